# SPDX-License-Identifier: Apache-2.0
"""A stand-in replica for one drill: it answers a completion with the headers of a stream
(200, text/event-stream), says so on stdout ("headers sent"), and then sends nothing: the
test kills it (SIGKILL) in that gap, which a real vLLM cannot be timed to hit (its first
chunk follows its headers within milliseconds).

    python replica_that_dies_after_its_headers.py PORT
"""

from __future__ import annotations

import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        print("headers sent", flush=True)
        time.sleep(3600)  # the test kills us here

    def log_message(self, format: str, *args: object) -> None:
        pass


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    print("listening", flush=True)
    server.serve_forever()
