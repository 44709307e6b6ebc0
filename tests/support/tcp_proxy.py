"""A TCP proxy on 127.0.0.1 that can cut the line (an outage a test can switch on and off) and
count a client's round trips."""

from __future__ import annotations

import contextlib
import socket
import threading
import time


class TcpProxy:
    def __init__(
        self, target_port: int, target_host: str = "127.0.0.1", *, reply_delay: float = 0.0
    ) -> None:
        """``reply_delay`` holds back every reply of the server: a client that waits for each
        reply before sending its next request then sends it at least that much later."""
        self._target = (target_host, target_port)
        self._reply_delay = reply_delay
        self._last_client_data = 0.0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._open = threading.Event()
        self._open.set()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.client_bursts = 0
        """How many times a client sent after a silence of half the reply delay: with a reply
        delay, a client that waits for each reply before its next request sends one burst per
        request, and a pipeline of requests is one burst however the kernel splits it."""
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        """Drop every open connection and refuse new ones until ``restore``."""
        self._open.clear()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            self._sockets.clear()
        time.sleep(0.1)  # let the pumps see the shutdown and close their sockets

    def restore(self) -> None:
        self._open.set()

    def close(self) -> None:
        self.cut()
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._open.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self._target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    def _count_burst(self) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last_client_data > self._reply_delay / 2:
                self.client_bursts += 1
            self._last_client_data = now

    def _pump(self, source: socket.socket, sink: socket.socket, from_client: bool = False) -> None:
        try:
            while data := source.recv(65536):
                if from_client:
                    self._count_burst()
                elif self._reply_delay:
                    time.sleep(self._reply_delay)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            source.close()
