# SPDX-License-Identifier: Apache-2.0
"""A TCP forwarder that a test can cut and restore: one process loses its PostgreSQL (or
Redis) while the test's own connection keeps working."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable


class CuttableProxy:
    """Listens on ``host``:``port`` (127.0.0.1 unless told) and forwards each connection
    to ``connect()``.

    ``cut()`` closes the listener and every forwarded connection (the far end looks dead:
    new connections are refused); ``restore()`` listens again on the same port.
    """

    def __init__(self, connect: Callable[[], socket.socket], host: str = "127.0.0.1") -> None:
        self.connect = connect
        self.host = host
        self.port = 0
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    @classmethod
    def to_unix_socket(cls, path: str, host: str = "127.0.0.1") -> CuttableProxy:
        def connect() -> socket.socket:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(path)
            return sock

        return cls(connect, host)

    def start(self) -> CuttableProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def cut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._open = self._open, set()
        if listener is not None:
            listener.close()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def restore(self) -> None:
        self.start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # cut
                return
            try:
                server = self.connect()
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    server.close()
                    return
                self._open.update((client, server))
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=_pump, args=(source, target), daemon=True).start()


def _pump(source: socket.socket, target: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            target.sendall(data)
    for sock in (source, target):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
