"""A local HTTP server for a provider's stand-in: each request goes to `stand_in.handle`,
which answers (status, JSON)."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any, Protocol

from tests.local_server import LocalHttpServer


class Handles(Protocol):
    def handle(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, Any]: ...


class HttpStandIn(LocalHttpServer):
    """Serves a stand-in on 127.0.0.1 on a free port, in a thread."""

    def __init__(self, stand_in: Handles) -> None:
        self.stand_in = stand_in
        super().__init__(_handler_for(stand_in))


def _handler_for(stand_in: Handles) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, answer = stand_in.handle("POST", self.path, headers, body)
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
