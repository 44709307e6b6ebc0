"""The email tasks, points earned and points expiring (``models.services.emails``): the SMTP client
is wired here, its failures translated into the service's terms."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

from celery import Task

from models.domain.names import SEND_POINTS_EARNED_EMAIL, SEND_POINTS_EXPIRING_EMAIL
from models.services import emails
from models.services.emails import EmailOutcomeUnsure, EmailRefused, HandOver
from tasks.commands import riding_out_faults
from tasks.side_effects import perform, side_effect_task
from workers.db import database
from workers.outbound.mailer import EmailNotSent, EmailOutcomeUnknown, SmtpSettings, send_email
from workers.settings import settings


class SmtpMailer:
    """``send_email`` with the environment's settings, as the service's ``Mailer``."""

    def __init__(self, settings: SmtpSettings) -> None:
        self._settings = settings

    @property
    def default_sender(self) -> str:
        return self._settings.default_sender

    def send(self, message: EmailMessage, hand_over: HandOver) -> None:
        try:
            send_email(message, self._settings, hand_over=hand_over)
        except EmailOutcomeUnknown as unknown:
            raise EmailOutcomeUnsure(str(unknown)) from unknown
        except EmailNotSent as error:
            raise EmailRefused(str(error), permanent=error.permanent) from error


@side_effect_task(SEND_POINTS_EARNED_EMAIL)
def send_points_earned_email(self: Task[Any, Any], outbox_id: int) -> str:
    return perform(
        outbox_id,
        lambda row_id: emails.send_points_earned(
            database.unit_of_work, row_id, SmtpMailer(settings().smtp), riding_out_faults
        ),
    )


@side_effect_task(SEND_POINTS_EXPIRING_EMAIL)
def send_points_expiring_email(self: Task[Any, Any], outbox_id: int) -> str:
    return perform(
        outbox_id,
        lambda row_id: emails.send_points_expiring(
            database.unit_of_work, row_id, SmtpMailer(settings().smtp), riding_out_faults
        ),
    )
