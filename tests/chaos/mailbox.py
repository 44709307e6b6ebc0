"""The scenario's SMTP server: the test suite's real aiosmtpd server, plus the time each message
arrived and kills armed for the middle of a conversation.

A pool process killed while it talks to the SMTP server is where an email is most easily lost or
sent twice, and a kill at a random moment rarely lands there. So a kill can be armed for the next
conversation, at one of two moments: at MAIL FROM, before the message was handed over (the email
must be sent again), or once the whole message arrived but before the server replied (it must not
be sent again). The server finds the client's process from its TCP port and kills exactly it.
"""

from __future__ import annotations

import socket
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from email import policy
from email.parser import BytesParser
from typing import Literal

from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.support.smtp import SmtpServer, _BoundController

Stage = Literal["mail", "data"]
KillClient = Callable[[int], bool]
"""Kills the process behind the client's TCP port; False when it found none."""


@dataclass(frozen=True)
class Arrival:
    message_id: str
    at: float
    """``time.time()`` when the whole message had arrived."""


class Mailbox(SmtpServer):
    def __init__(self) -> None:
        super().__init__()
        self._arrivals: list[Arrival] = []
        self._armed: dict[Stage, tuple[KillClient, Callable[[], None]]] = {}

    def __enter__(self) -> Mailbox:
        """As the suite's server, but with Nagle's algorithm off on every connection: asyncio
        turns it off only for sockets that say IPPROTO_TCP, which ``socket.create_server``'s do
        not, and then each multi-line EHLO reply waits 40 ms for the client's delayed ACK. At
        thousands of emails that made the test server the bottleneck of the whole run."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            listener.bind((self.host, 0))
            listener.listen()
            controller = _BoundController(
                self, listener, server_hostname="smtp.test", ready_timeout=10.0
            )
            controller.start()
        except BaseException:
            listener.close()
            raise
        self._controller = controller
        self.port = listener.getsockname()[1]
        return self

    def arm(self, stage: Stage, kill: KillClient, fired: Callable[[], None]) -> None:
        """Kill the client of the next conversation that reaches ``stage``; ``fired`` is called
        once it did."""
        with self._lock:
            self._armed[stage] = (kill, fired)

    def disarm(self, stage: Stage) -> None:
        with self._lock:
            self._armed.pop(stage, None)

    def arrivals(self) -> list[Arrival]:
        with self._lock:
            return list(self._arrivals)

    def message_id_counts(self) -> Counter[str]:
        return Counter(arrival.message_id for arrival in self.arrivals())

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        self._fire("mail", session)
        return await super().handle_MAIL(server, session, envelope, address, mail_options)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self._fire("data", session)
        raw = envelope.original_content
        assert isinstance(raw, bytes)
        headers = BytesParser(policy=policy.default).parsebytes(raw, headersonly=True)
        arrival = Arrival(str(headers.get("Message-ID", "")).strip(), time.time())
        with self._lock:
            self._arrivals.append(arrival)
        return await super().handle_DATA(server, session, envelope)

    def _fire(self, stage: Stage, session: Session) -> None:
        """Runs on the server's event loop, so sessions never fire concurrently; only arming and
        disarming come from another thread. An armed kill stays armed until it hits a client."""
        with self._lock:
            armed = self._armed.get(stage)
        if armed is None:
            return
        kill, fired = armed
        peer = session.peer
        if not (isinstance(peer, tuple) and kill(peer[1])):
            return  # the client was not found: the next conversation gets the kill
        with self._lock:
            if self._armed.get(stage) is armed:
                del self._armed[stage]
        fired()
