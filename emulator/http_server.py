"""The emulator's HTTP server: a threaded werkzeug server bound to loopback.

One thread per connection (S3 notifications and Step Functions tasks call back into the emulator
while a request is being served), moto's request handler without werkzeug's access log (the WSGI
layer logs requests itself), and a shutdown that closes open keep-alive connections so that the
port is released at once.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from typing import Any

from werkzeug.serving import ThreadedWSGIServer

LOG = logging.getLogger("emulator")


def port_is_free(host: str, port: int) -> bool:
    """True unless something listens on ``host:port``.

    Bound with ``SO_REUSEADDR``, like the server itself: connections in TIME-WAIT left by an
    earlier run (several hundred after ``make demo``) do not make the port "in use".
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def request_handler_class() -> type:
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    class RequestHandler(MotoRequestHandler):
        """moto's handler without werkzeug's stderr access log."""

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            return

        def log(self, type: str, message: str, *args: Any) -> None:
            LOG.log(logging.ERROR if type == "error" else logging.DEBUG, message, *args)

    return RequestHandler


class Server(ThreadedWSGIServer):
    """A threaded werkzeug server that can close its open keep-alive connections on shutdown."""

    daemon_threads = True

    def __init__(self, host: str, port: int, app: Any, handler: type) -> None:
        self._conn_lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._conn_threads: set[threading.Thread] = set()
        # Bind here (werkzeug would print and sys.exit(1) on EADDRINUSE), then hand werkzeug the socket.
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((host, port))
            listener.listen(512)
            super().__init__(host, port, app, handler=handler, fd=listener.fileno())
        finally:
            listener.close()  # werkzeug holds its own duplicate of the descriptor

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_connection, args=(request, client_address), name="emulator-http", daemon=True
        )
        with self._conn_lock:
            self._connections.add(request)
            self._conn_threads.add(thread)
        thread.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except OSError:
            LOG.debug("connection from %s ended with a socket error", client_address, exc_info=True)
        except Exception:
            LOG.exception("error while serving a connection from %s", client_address)
        finally:
            self.shutdown_request(request)
            with self._conn_lock:
                self._connections.discard(request)
                self._conn_threads.discard(threading.current_thread())

    def close_connections(self, timeout: float = 5.0) -> None:
        """Shut down every open client connection and wait for their threads."""
        with self._conn_lock:
            connections = list(self._connections)
            threads = list(self._conn_threads)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(deadline - time.monotonic(), 0.0))
