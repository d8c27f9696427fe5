"""A local HTTP server on 127.0.0.1 that serves real GMT files in the Broad Institute's layout.

``release/<version>/<file>`` paths map to files of a ``gene_sets`` folder (the ``shared_data``
fixture's); faults can be queued per path to imitate a broken network: a truncated body, an HTML
page (with or without an HTML content type), an HTTP 500, a slow answer, or changed bytes. Every
request is counted.

The mouse ``mh`` file of ``2024.1.Mm`` is a stand-in: the shared data holds no MSigDB 2024.1.Mm
file, so it serves the mouse Hallmark v7.1 (mouse symbols) under that name.
"""

from __future__ import annotations

import collections
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

#: URL path -> file name in shared/data/gene_sets
ROUTES = {
    "/release/7.1/h.all.v7.1.symbols.gmt": "h.all.v7.1.symbols.gmt",
    "/release/7.1/c2.all.v7.1.symbols.gmt": "c2.all.v7.1.symbols.gmt",
    "/release/2022.1.Hs/c2.cp.reactome.v2022.1.Hs.symbols.gmt": "c2.cp.reactome.v2022.1.Hs.symbols.gmt",
    "/release/2024.1.Mm/mh.all.v2024.1.Mm.symbols.gmt": "mouse.h.all.v7.1.symbols.gmt",
}

HTML_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Service Unavailable</title></head>"
    b"<body><h1>Sorry, the page is temporarily unavailable</h1></body></html>\n"
)

FAULTS = ("truncate", "html", "html-as-text", "not-gmt", "500", "slow", "changed")


class MsigdbServer:
    """Threaded HTTP server; ``url`` is its base URL (``http://127.0.0.1:PORT``)."""

    def __init__(self, gene_set_dir: Path, slow_seconds: float = 1.0) -> None:
        self.files = {route: (gene_set_dir / name).read_bytes() for route, name in ROUTES.items()}
        self.faults: dict[str, collections.deque[str]] = collections.defaultdict(collections.deque)
        self.hits: collections.Counter[str] = collections.Counter()
        self.slow_seconds = slow_seconds
        self.lock = threading.Lock()
        handler = _make_handler(self)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def reset(self) -> None:
        with self.lock:
            self.faults.clear()
            self.hits.clear()

    def queue(self, path: str, *faults: str) -> None:
        """Apply these faults to the next requests of ``path``, one per request."""
        assert all(f in FAULTS for f in faults)
        with self.lock:
            self.faults[path].extend(faults)

    def _next(self, path: str) -> str | None:
        with self.lock:
            self.hits[path] += 1
            queue = self.faults.get(path)
            return queue.popleft() if queue else None

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def changed_bytes(body: bytes) -> bytes:
    """The same file with one gene symbol replaced (same length, different sha256)."""
    first, rest = body.split(b"\n", 1)
    fields = first.split(b"\t")
    fields[2] = b"X" * len(fields[2])
    return b"\t".join(fields) + b"\n" + rest


def _make_handler(server: MsigdbServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # keep test output clean
            pass

        def _send(self, status: int, body: bytes, content_type: str, length: int | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body) if length is None else length))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
            self.close_connection = True

        def do_GET(self) -> None:  # noqa: N802 - http.server API
            path = urlsplit(self.path).path
            fault = server._next(path)
            body = server.files.get(path)
            if fault == "500":
                return self._send(500, b"internal error\n", "text/plain")
            if fault == "html":
                return self._send(200, HTML_PAGE, "text/html; charset=utf-8")
            if fault == "html-as-text":
                return self._send(200, HTML_PAGE, "text/plain")
            if fault == "not-gmt":
                return self._send(200, b"this is not a gene set file\nat all\n", "text/plain")
            if body is None:
                return self._send(404, HTML_PAGE, "text/html")
            if fault == "slow":
                time.sleep(server.slow_seconds)
            if fault == "changed":
                body = changed_bytes(body)
            if fault == "truncate":
                # Promise the whole body, send half of it, and hang up.
                self._send(200, body[: len(body) // 2], "text/plain", length=len(body))
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return None
            return self._send(200, body, "text/plain")

    return Handler


def closed_port_url() -> str:
    """A base URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
