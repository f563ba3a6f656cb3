"""A stand-in for the platform's HTTP API on localhost (the one thing we fake):
it speaks DESIGN.md's endpoints, pages, X-API-Key auth, and can be told to fail."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


@dataclass
class FakeApi:
    key: str
    records: dict[str, list[dict]] = field(default_factory=lambda: {"conversations": [], "messages": []})
    page_size: int = 2
    # Answers to give before the real one, per path: e.g. {"/v1/messages": [429, 500]}.
    failures: dict[str, list[int]] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str], str | None]] = field(default_factory=list)
    base_url: str = ""

    def page(self, resource: str, query: dict[str, str]) -> dict:
        since, until = query["since"], query["until"]
        time_field = "started_at" if resource == "conversations" else "timestamp"
        chosen = [r for r in self.records[resource] if since <= r[time_field] < until]
        for name in ("status", "phone_number_id", "customer_id", "contact_phone"):
            if name in query:
                chosen = [r for r in chosen if str(r.get(name)) == query[name]]
        number = int(query.get("page", "1"))
        start = (number - 1) * self.page_size
        return {"data": chosen[start:start + self.page_size], "page": number,
                "has_more": start + self.page_size < len(chosen)}


def _handler(api: FakeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            url = urlparse(self.path)
            query = {name: values[-1] for name, values in parse_qs(url.query).items()}
            api.requests.append((url.path, query, self.headers.get("X-API-Key")))
            if self.headers.get("X-API-Key") != api.key:
                return self._send(401, {"error": "invalid key " + str(self.headers.get("X-API-Key"))})
            pending = api.failures.get(url.path)
            if pending:
                status = pending.pop(0)
                return self._send(status, {"error": "try later"}, {"Retry-After": "0"} if status == 429 else {})
            resource = url.path.removeprefix("/v1/")
            if resource not in api.records:
                return self._send(404, {"error": "not found"})
            return self._send(200, api.page(resource, query))

        def _send(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@contextmanager
def serve(api: FakeApi) -> Iterator[FakeApi]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(api))
    api.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
