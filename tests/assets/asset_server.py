"""The asset tests' HTTP server on 127.0.0.1 and their small helpers.

Paths with a fault: ``/hang`` (never answers), ``/stall`` (half a file, then
nothing), ``/chunked-cut``, ``/short``, ``/drip``. ``server.files`` maps other
paths to bodies, ``server.slow`` pauses halfway through some of them, and
``silent=True`` makes a server that accepts connections and never replies.
"""

from __future__ import annotations

import hashlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tlwidgets.catalogue import Asset

PAYLOAD = b"real bytes of a small asset\n" * 1000


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_HEAD(self):
        if self.server.silent:
            time.sleep(30)
            return
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        server = self.server
        server.hits.append(self.path)
        if server.silent or self.path == "/hang":
            time.sleep(30)
            return
        if self.path == "/stall":  # half a file, then nothing
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD[: len(PAYLOAD) // 2])
            self.wfile.flush()
            time.sleep(30)
            return
        if self.path == "/chunked-cut":  # a chunked body that ends before its last chunk
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            half = PAYLOAD[: len(PAYLOAD) // 2]
            self.wfile.write(f"{len(half):x}\r\n".encode() + half + b"\r\n")
            self.wfile.write(f"{len(half):x}\r\n".encode() + half[:100])
            self.wfile.flush()
            self.close_connection = True
            return
        if self.path == "/short":  # Content-Length promises more than is sent
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD[:1000])
            self.close_connection = True
            return
        if self.path == "/drip":  # one byte every 0.5 s: each read is quick, the whole is not
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            for byte in PAYLOAD[:200]:
                try:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.5)
            return
        body = server.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.path in server.slow:  # half, a pause, the rest: lets two fetches overlap
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            time.sleep(server.slow[self.path])
            self.wfile.write(body[len(body) // 2:])
        else:
            self.wfile.write(body)


def start_server(silent: bool = False):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.files, httpd.hits, httpd.slow, httpd.silent = {}, [], {}, silent
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    return httpd


def an_asset(url: str, **kw) -> Asset:
    fields = dict(id="test-asset", title="Test asset", path="misc/test.bin", url=url,
                  licence="CC0", sha256=hashlib.sha256(PAYLOAD).hexdigest(),
                  file_size=len(PAYLOAD))
    fields.update(kw)
    return Asset(**fields)


def leftovers(cache: Path) -> list[Path]:
    partial = cache / ".partial"
    return list(partial.iterdir()) if partial.exists() else []
