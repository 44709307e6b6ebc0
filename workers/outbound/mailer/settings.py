"""Where and how to send email, from the ``LOYALTY_SMTP_*`` and ``LOYALTY_EMAIL_FROM`` variables."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import getaddresses
from typing import TypeVar

_TRUE_WORDS = frozenset({"true", "1", "yes"})
_FALSE_WORDS = frozenset({"false", "0", "no"})

T = TypeVar("T")


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to send; ``default_sender`` is the From for shops without their own."""

    host: str = "localhost"
    port: int = 25
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = False
    timeout: float = 10.0
    default_sender: str = "loyalty@localhost"

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> SmtpSettings:
        """Read the ``LOYALTY_SMTP_*`` variables; an empty variable counts as unset.

        Raises ``ValueError`` naming the variable when a value is invalid. The password's value
        is never part of an error message.
        """
        env = os.environ if environ is None else environ
        host = _text(env, "LOYALTY_SMTP_HOST") or "localhost"
        username = _text(env, "LOYALTY_SMTP_USERNAME")
        password = env.get("LOYALTY_SMTP_PASSWORD") or None
        if username is None and password is not None:
            raise ValueError("LOYALTY_SMTP_PASSWORD is set but LOYALTY_SMTP_USERNAME is not")
        if username is not None and password is None:
            raise ValueError("LOYALTY_SMTP_USERNAME is set but LOYALTY_SMTP_PASSWORD is not")
        return cls(
            host=host,
            port=_parsed(env, "LOYALTY_SMTP_PORT", 25, _port, "a port number from 1 to 65535"),
            username=username,
            password=password,
            starttls=_parsed(
                env, "LOYALTY_SMTP_STARTTLS", False, _flag, "one of true/false/1/0/yes/no"
            ),
            timeout=_parsed(
                env, "LOYALTY_SMTP_TIMEOUT", 10.0, _seconds, "a positive number of seconds"
            ),
            default_sender=_parsed(
                env, "LOYALTY_EMAIL_FROM", "loyalty@localhost", _address, "one email address"
            ),
        )


def _text(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _parsed(
    env: Mapping[str, str],
    name: str,
    default: T,
    parse: Callable[[str], T | None],
    expected: str,
) -> T:
    """The variable's value through ``parse``, or ``default`` when it is unset; a value
    ``parse`` cannot read (it returns ``None``) is refused, naming the variable."""
    value = _text(env, name)
    if value is None:
        return default
    parsed = parse(value)
    if parsed is None:
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return parsed


def _port(value: str) -> int | None:
    port = _converted(value, int)
    return port if port is not None and 1 <= port <= 65535 else None


def _flag(value: str) -> bool | None:
    if value.lower() in _TRUE_WORDS:
        return True
    if value.lower() in _FALSE_WORDS:
        return False
    return None


def _seconds(value: str) -> float | None:
    seconds = _converted(value, float)
    return seconds if seconds is not None and math.isfinite(seconds) and seconds > 0 else None


def _converted(value: str, convert: Callable[[str], T]) -> T | None:
    try:
        return convert(value)
    except ValueError:
        return None


def _address(value: str) -> str | None:
    addresses = getaddresses([value])
    if len(addresses) != 1 or "@" not in addresses[0][1]:
        return None
    return value
