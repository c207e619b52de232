"""A real HTTP receiver on loopback for webhook tests, scripted to fail before it accepts."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class Received:
    """One request the receiver got."""

    headers: dict[str, str]
    body: bytes
    at: float
    answered: int


@dataclass
class Receiver:
    """Answers the scripted status codes in order, then 200; records every request."""

    url: str
    script: list[int] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self) -> int:
        with self.lock:
            return self.script.pop(0) if self.script else 200

    def wait_for(self, count: int, timeout: float = 60.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.requests) >= count:
                return list(self.requests)
            time.sleep(0.05)
        raise AssertionError(f"expected {count} webhook requests, got {len(self.requests)}")


def signature_valid(secret: str, received: Received) -> bool:
    """The verification a receiver does, as the README shows it."""
    timestamp = received.headers["X-Portal-Timestamp"]
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + received.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(f"sha256={expected}", received.headers["X-Portal-Signature"])


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state: dict[str, Any] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802  (http.server's name)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            code = state["receiver"].answer()
            state["receiver"].requests.append(
                Received(headers=dict(self.headers.items()), body=body, at=time.time(), answered=code)
            )
            self.send_response(code)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok" if code < 300 else b"receiver is down")

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["receiver"] = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}/hook")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state["receiver"]
    finally:
        server.shutdown()
        server.server_close()


# The review personas and a gating-ready candidate, shared with the review tests.
from tests.reviews.conftest import _fast_password_hashing, candidate, people  # noqa: E402, F401
