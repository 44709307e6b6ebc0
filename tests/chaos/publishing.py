"""Publishing the workload the way an upstream service would, through the project's publisher.

The publisher's Celery app is configured by ``celeryconfig`` exactly as the workers' is, read
afresh with the scenario's environment: its queue declarations (quorum queues on RabbitMQ) and
transport options (publisher confirms) depend on the broker URL it is read with. A publish that
raises is tried again, because resending under the same ``command_id`` is safe: that is the
contract, and it is how a broker fault becomes a delay instead of a lost command.
"""

from __future__ import annotations

import logging
import threading
import time

from celery import Celery

from models.domain.commands import InvalidCommand
from tests.chaos.workload import Workload
from workers.client.publisher import publish_adjustment

log = logging.getLogger(__name__)

RETRY_PAUSE = 0.5


class Publisher:
    """Sends ``workload.sends`` at ``rate`` messages a second, from ``run()``."""

    def __init__(self, app: Celery, workload: Workload, rate: float, give_up_after: float) -> None:
        self.app = app
        self.workload = workload
        self.rate = rate
        self.give_up_after = give_up_after
        self.first_published: dict[str, float] = {}
        """command_id -> ``time.time()`` of its first successful publish."""
        self.messages = 0
        self.retries = 0
        self.failures: list[str] = []
        self.started_at = 0.0
        self.finished_at = 0.0

    def run(self, start: float, stop: threading.Event) -> None:
        """Send message n at ``start`` (monotonic) + n / rate, or as soon after as it can."""
        if stop.wait(max(0.0, start - time.monotonic())):
            return
        self.started_at = time.time()
        for position, index in enumerate(self.workload.sends):
            if stop.is_set():
                break
            pause = start + position / self.rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            command = self.workload.commands[index]
            if self._publish(command.payload(), stop):
                self.messages += 1
                self.first_published.setdefault(command.command_id, time.time())
        self.finished_at = time.time()

    def _publish(self, payload: dict[str, object], stop: threading.Event) -> bool:
        deadline = time.monotonic() + self.give_up_after
        while True:
            try:
                publish_adjustment(payload, app=self.app)
                return True
            except InvalidCommand:
                raise  # a bug in the workload, not a fault to ride out
            except Exception as error:  # PublishError, or a connection error from the transport
                if stop.is_set() or time.monotonic() > deadline:
                    self.failures.append(
                        f"{payload['command_id']}: {type(error).__name__}: {error}"
                    )
                    return False
                self.retries += 1
                log.info("publish of %s failed (%s); again", payload["command_id"], error)
                time.sleep(RETRY_PAUSE)
