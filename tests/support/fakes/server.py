"""What the fake providers share: a real HTTP server on 127.0.0.1, a record of every request,
and faults a test can inject (429s the provider's way, 5xx, hangs).

Each fake is a ``ThreadingHTTPServer`` on an ephemeral port, served from a daemon thread. The
clients under test talk to it over real sockets with their real HTTP libraries, so headers,
encodings, keep-alive and timeouts are exercised as they would be against the provider.
"""

from __future__ import annotations

import copy
import json
import threading
import time
import traceback
import urllib.parse
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self, TypeVar

V = TypeVar("V")


class Headers(dict[str, str]):
    """Request headers, looked up case-insensitively (``headers["authorization"]``)."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        super().__init__((name.lower(), value) for name, value in pairs)

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(name.lower())

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name.lower(), default)


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: Headers
    body: bytes
    json: Any
    at: float  # time.monotonic() when the request arrived
    status: int | None = None  # what it was answered (None while it is still being answered)
    reply_headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Reply:
    status: int
    body: Any = None  # JSON-serialisable; None sends an empty body
    headers: dict[str, str] = field(default_factory=dict)


class BadRequest(Exception):
    """Raised by route handlers to answer 400 in the provider's own error format."""

    def __init__(self, message: str, pointer: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.pointer = pointer


@dataclass
class _Fault:
    status: int
    retry_after: float | None


class FakeProviderServer:
    """Base of the three fakes. Subclasses implement the provider's routes and error bodies."""

    name: ClassVar[str] = "provider"
    content_type: ClassVar[str] = "application/json"

    def __init__(self, api_keys: tuple[str, ...] | list[str] | set[str] = ("test-key",)) -> None:
        self.api_keys = set(api_keys)
        self.lock = threading.RLock()
        self._requests: list[RecordedRequest] = []
        self._faults: deque[_Fault] = deque()
        self._always: _Fault | None = None
        self._hangs: deque[float] = deque()
        # Set (and replaced) by reset() and close(): a hanging request then gives up unprocessed,
        # so a slow answer can never change the state a later test starts from.
        self._wake = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.errors: list[str] = []  # tracebacks of bugs in the fake itself
        self.reset_state()

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> Self:
        self._wake = threading.Event()
        handler = type(f"{type(self).__name__}Handler", (_Handler,), {"server_fake": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},  # close() waits for the next poll
            name=f"fake-{self.name}",
            daemon=True,
        )
        self._thread.start()
        return self

    def close(self) -> None:
        self._wake.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> Self:
        return self.start() if self._httpd is None else self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "the fake is not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- what tests use -------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self.lock:
            return list(self._requests)

    def requests_to(self, method: str, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == method and r.path == path]

    def fail_next(self, count: int = 1, status: int = 429, retry_after: float | None = 1) -> None:
        """Answer the next ``count`` requests with ``status`` (a 429 carries ``retry_after``
        the provider's way) without processing them."""
        with self.lock:
            self._faults.extend(_Fault(status, retry_after) for _ in range(count))

    def fail_always(self, status: int, retry_after: float | None = 1) -> None:
        with self.lock:
            self._always = _Fault(status, retry_after)

    def recover(self) -> None:
        with self.lock:
            self._always = None
            self._faults.clear()

    def hang_next(self, count: int, seconds: float) -> None:
        """Sleep ``seconds`` before answering each of the next ``count`` requests; they are then
        processed as usual, as a provider that was merely slow would (unless the fake is reset
        or closed first)."""
        with self.lock:
            self._hangs.extend(seconds for _ in range(count))

    def reset(self) -> None:
        """Forget requests, faults and provider-side state; the valid keys stay."""
        with self.lock:
            self._requests.clear()
            self._faults.clear()
            self._hangs.clear()
            self._always = None
            self._wake.set()
            self._wake = threading.Event()
            self.reset_state()

    # -- for subclasses -------------------------------------------------------------------------

    def reset_state(self) -> None:
        raise NotImplementedError

    def authorized(self, request: RecordedRequest) -> bool:
        raise NotImplementedError

    def unauthorized(self, request: RecordedRequest) -> Reply:
        raise NotImplementedError

    def missing_headers(self, request: RecordedRequest) -> Reply | None:
        """A reply when a header the provider requires is missing or wrong."""
        return None

    def fault(self, request: RecordedRequest, status: int, retry_after: float | None) -> Reply:
        raise NotImplementedError

    def bad_request(self, request: RecordedRequest, error: BadRequest) -> Reply:
        raise NotImplementedError

    def not_found(self, request: RecordedRequest, what: str) -> Reply:
        raise NotImplementedError

    def route(self, request: RecordedRequest) -> Reply:
        raise NotImplementedError

    @staticmethod
    def snapshot(value: V) -> V:
        """State handed to tests is a copy: the server threads keep mutating the original."""
        return copy.deepcopy(value)

    # -- request processing (server threads) ----------------------------------------------------

    def _answer(self, request: RecordedRequest) -> Reply:
        with self.lock:
            self._requests.append(request)
            hang = self._hangs.popleft() if self._hangs else None
            wake = self._wake
        if hang is not None and wake.wait(hang):
            return self.fault(request, 503, None)  # reset or closed meanwhile: never processed
        with self.lock:
            fault = self._faults.popleft() if self._faults else self._always
        if fault is not None:
            return self.fault(request, fault.status, fault.retry_after)
        if not self.authorized(request):
            return self.unauthorized(request)
        missing = self.missing_headers(request)
        if missing is not None:
            return missing
        try:
            with self.lock:
                return self.route(request)
        except BadRequest as error:
            return self.bad_request(request, error)
        except Exception:  # a bug in the fake: make it loud, not a mysterious disconnect
            self.errors.append(traceback.format_exc())
            return self.fault(request, 500, None)


class _Handler(BaseHTTPRequestHandler):
    server_fake: ClassVar[FakeProviderServer]
    protocol_version = "HTTP/1.1"  # keep-alive, as the real APIs and the clients' pools use

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the tests read .requests; stderr noise helps nobody

    def _handle(self) -> None:
        arrived = time.monotonic()
        fake = self.server_fake
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        request = RecordedRequest(
            method=self.command,
            path=urllib.parse.unquote(url.path),
            query={
                key: values[0]
                for key, values in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()
            },
            headers=Headers(list(self.headers.items())),
            body=body,
            json=parsed,
            at=arrived,
        )
        reply = fake._answer(request)
        request.status = reply.status
        request.reply_headers = dict(reply.headers)
        payload = b"" if reply.body is None else json.dumps(reply.body).encode()
        try:
            self.send_response(reply.status)
            if payload:
                self.send_header("Content-Type", fake.content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()
        except OSError:  # the client gave up (a timeout during a hang): nobody to answer
            self.close_connection = True
