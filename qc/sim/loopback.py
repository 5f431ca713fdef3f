"""One loopback HTTP listener served from a daemon thread: the lifecycle the simulator's Alpha Vantage and
signal-channel servers share (bind 127.0.0.1 only, start once, stop twice safely)."""

from __future__ import annotations

import errno
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger(__name__)


class Serving:
    """``server_class(("127.0.0.1", port), handler)`` in a daemon thread; ``port`` 0 picks a free one."""

    def __init__(self, name: str, port: int) -> None:
        self.name, self.port = name, port
        self.httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self, server_class: type[ThreadingHTTPServer], handler: type[BaseHTTPRequestHandler],
              fallback: bool = False) -> ThreadingHTTPServer:
        """Bind and serve; return the server (its ``app`` is the caller's to set before requests matter).

        ``fallback``: when the port is taken, bind any free one (for a port nobody chose; a chosen one fails).
        """
        if self.httpd is not None:
            raise RuntimeError(f"{self.name} already started")
        try:
            httpd = server_class(("127.0.0.1", self.port), handler)
        except OSError as exc:
            if not (fallback and exc.errno == errno.EADDRINUSE):
                raise
            log.warning("%s: port %d is taken; serving on any free port", self.name, self.port)
            httpd = server_class(("127.0.0.1", 0), handler)
        self.httpd, self.port = httpd, int(httpd.server_address[1])
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"{self.name}:{self.port}", daemon=True)
        return httpd

    def run(self) -> int:
        """Start the serving thread (after the caller attached its app); the port."""
        assert self._thread is not None, "start() first"
        self._thread.start()
        return self.port

    def stop(self) -> None:
        """Stop serving and close the socket; safe to call twice."""
        httpd, self.httpd = self.httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
