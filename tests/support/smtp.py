"""A real SMTP server on 127.0.0.1 for tests, with the faults at-most-once sending must survive.

It runs aiosmtpd in a background thread. Faults are armed for the next N commands or messages: a
refusal with a chosen code at RCPT or at the end of DATA, or, after the whole message arrived, a
connection dropped or a reply withheld, either of which leaves the client unable to know whether
the message was delivered.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Awaitable
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from types import TracebackType
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


class ReceivedMessage(EmailMessage):
    """A message as the server parsed it (line ends as ``\n``), with the SMTP envelope it came
    in and the bytes exactly as received (``raw``, CRLF line ends)."""

    envelope_from: str = ""
    envelope_to: tuple[str, ...] = ()
    raw: bytes = b""


class _BoundController(Controller):
    """Serves on a socket bound beforehand to a free port: no window for another process to
    take the port between choosing and binding it (aiosmtpd itself needs a fixed port)."""

    def __init__(self, handler: Any, listener: socket.socket, **smtp_options: Any) -> None:
        self._listener = listener
        host, port = listener.getsockname()
        super().__init__(handler, hostname=host, port=port, **smtp_options)

    def _create_server(self) -> Awaitable[asyncio.AbstractServer]:
        return self.loop.create_server(self._factory_invoker, sock=self._listener)


class SmtpServer:
    """Use as a context manager. ``auth=(username, password)`` requires AUTH LOGIN or PLAIN
    with those credentials before MAIL FROM (offered without TLS, for the test only)."""

    host = "127.0.0.1"

    def __init__(self, auth: tuple[str, str] | None = None) -> None:
        self._auth = auth
        self._lock = threading.Condition()
        self._messages: list[ReceivedMessage] = []
        self._refusals_left = 0
        self._refusal_code = 451
        self._refusal_stage: Literal["rcpt", "data"] = "rcpt"
        self._drops_left = 0
        self._stalls_left = 0
        self._controller: _BoundController | None = None
        self.port = 0
        """Known once the server runs (inside the ``with`` block)."""

    def __enter__(self) -> SmtpServer:
        options: dict[str, Any] = {"server_hostname": "smtp.test", "ready_timeout": 10.0}
        if self._auth is not None:
            options.update(authenticator=self._authenticate, auth_require_tls=False)
        listener = socket.create_server((self.host, 0))
        try:
            controller = _BoundController(self, listener, **options)
            controller.start()
        except BaseException:
            listener.close()
            raise
        self._controller = controller
        self.port = listener.getsockname()[1]
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._controller is not None
        self._controller.stop()
        self._controller = None

    @property
    def messages(self) -> list[ReceivedMessage]:
        """Every message the server received, including those whose reply it dropped."""
        with self._lock:
            return list(self._messages)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedMessage]:
        """Block until at least ``count`` messages arrived; fail the test after ``timeout``."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._messages) >= count, timeout):
                raise AssertionError(
                    f"expected {count} message(s) within {timeout}s, got {len(self._messages)}"
                )
            return list(self._messages)

    def refuse_next(
        self, count: int, code: int = 451, *, at: Literal["rcpt", "data"] = "rcpt"
    ) -> None:
        """Refuse the next ``count`` RCPT TO commands with ``code``, or with ``at="data"`` the
        next ``count`` messages at the end of DATA, after reading them (they are not kept)."""
        with self._lock:
            self._refusals_left = count
            self._refusal_code = code
            self._refusal_stage = at

    def drop_after_data_next(self, count: int) -> None:
        """For the next ``count`` messages, read the whole DATA, keep the message, then close
        the connection without replying: the client cannot tell whether it was delivered."""
        with self._lock:
            self._drops_left = count

    def stall_after_data_next(self, count: int) -> None:
        """For the next ``count`` messages, read the whole DATA, keep the message, and never
        reply: the client times out not knowing whether it was delivered."""
        with self._lock:
            self._stalls_left = count

    def reset(self) -> None:
        """Forget received messages and disarm every fault."""
        with self._lock:
            self._messages.clear()
            self._refusals_left = 0
            self._drops_left = 0
            self._stalls_left = 0

    # aiosmtpd hooks, run on the server's thread.

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert self._auth is not None
        username, password = self._auth
        accepted = isinstance(auth_data, LoginPassword) and (
            auth_data.login == username.encode() and auth_data.password == password.encode()
        )
        return AuthResult(success=accepted, handled=False)

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if self._auth is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        refusal = self._take_refusal("rcpt")
        if refusal is not None:
            return f"{refusal} Refused by the test server"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        refusal = self._take_refusal("data")
        if refusal is not None:
            return f"{refusal} Refused by the test server"
        assert isinstance(envelope.original_content, bytes)
        raw = envelope.original_content
        message = BytesParser(ReceivedMessage, policy=policy.default).parsebytes(
            raw.replace(b"\r\n", b"\n")
        )
        assert isinstance(message, ReceivedMessage)
        message.raw = raw
        message.envelope_from = envelope.mail_from or ""
        message.envelope_to = tuple(envelope.rcpt_tos)
        with self._lock:
            self._messages.append(message)
            self._lock.notify_all()
            fault: Literal["drop", "stall"] | None = None
            if self._drops_left > 0:
                self._drops_left -= 1
                fault = "drop"
            elif self._stalls_left > 0:
                self._stalls_left -= 1
                fault = "stall"
        if fault is None:
            return "250 OK"
        if fault == "drop":
            assert server.transport is not None
            server.transport.close()
        # Never return, so aiosmtpd sends no reply. The session's task is cancelled when the
        # connection closes: at once after a drop, when the client gives up after a stall.
        await asyncio.get_running_loop().create_future()
        raise AssertionError("unreachable: the session is cancelled when the connection closes")

    def _take_refusal(self, stage: str) -> int | None:
        with self._lock:
            if self._refusals_left <= 0 or self._refusal_stage != stage:
                return None
            self._refusals_left -= 1
            return self._refusal_code
