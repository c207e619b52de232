"""A local fake of the four evidence APIs: replays recorded responses by route, scripted per test.

`FakeApi` is a stdlib `ThreadingHTTPServer` on 127.0.0.1 (free port) in a daemon thread. A test
scripts a route with replies served in order (the last one repeats): recorded files, 429 with
Retry-After, 500, a hang past the client's timeout, a body cut off mid-way, malformed bodies, pages chosen by query
parameter. Every request is logged with its wall-clock and monotonic arrival time.

Real recordings are byte-identical copies of the shared fixtures under `tests/fixtures/external/recorded/`
(so any clone runs them; a test compares them with `SHARED_DIR`, default `<repo>/../shared`, when it is
there); cases they lack are hand-made files under `tests/fixtures/external/` (named `*.handmade.*`).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings

HANDMADE_DIR = Path(__file__).resolve().parent / "fixtures" / "external"
RECORDED_DIR = HANDMADE_DIR / "recorded"
CONTENT_TYPES = {".json": "application/json", ".xml": "text/xml; charset=UTF-8"}


def shared_dir() -> Path:
    """The shared folder beside the clone (or `SHARED_DIR`), which may be absent in a lone clone."""
    return Path(os.environ.get("SHARED_DIR") or settings.BASE_DIR.parent / "shared")


def recorded(name: str) -> Path:
    """Path of the repo's copy of a real recording; fail clearly when it is not there."""
    path = RECORDED_DIR / name
    if not path.is_file():
        pytest.fail(f"recorded response {path} is missing")
    return path


def handmade(name: str) -> Path:
    """Path of a hand-made response under tests/fixtures/external/."""
    path = HANDMADE_DIR / name
    assert path.is_file(), f"hand-made response {path} is missing"
    return path


@dataclass(frozen=True)
class Reply:
    """One scripted answer; `delay` seconds pass before it is sent (longer than the timeout = a hang).

    `content_length`, when set, is the Content-Length announced instead of the body's: with a larger one the
    server sends the body and closes the connection, so the client sees a response cut off mid-way.
    """

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    content_length: int | None = None


def truncated_reply(body: str, *, announced: int = 5000, content_type: str = "application/json") -> Reply:
    """A 200 that announces `announced` bytes, sends only `body`, then closes (a connection broken off)."""
    return Reply(body=body.encode(), headers={"Content-Type": content_type}, content_length=announced)


def file_reply(path: Path, *, status: int = 200, headers: Mapping[str, str] | None = None) -> Reply:
    """Reply with a file's bytes as they are, typed by its suffix."""
    content_type = CONTENT_TYPES.get(path.suffix, "application/octet-stream")
    return Reply(status=status, body=path.read_bytes(), headers={"Content-Type": content_type, **(headers or {})})


def json_reply(data: Any, *, status: int = 200, headers: Mapping[str, str] | None = None) -> Reply:
    """Reply with `data` as JSON."""
    body = json.dumps(data).encode()
    return Reply(status=status, body=body, headers={"Content-Type": "application/json", **(headers or {})})


def raw_reply(body: str, *, status: int = 200, content_type: str = "application/json", **headers: str) -> Reply:
    """Reply with a literal body (malformed JSON or XML, an error page)."""
    return Reply(status=status, body=body.encode(), headers={"Content-Type": content_type, **headers})


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    wall: float
    mono: float
    path: str
    query: Mapping[str, list[str]]

    @property
    def params(self) -> dict[str, str]:
        """Query parameters, first value of each."""
        return {key: values[0] for key, values in self.query.items()}


# Builds a reply from the request's query parameters (first value of each), e.g. a page chosen by retstart.
Answer = Callable[[Mapping[str, str]], Reply]


@dataclass
class _Route:
    path: str
    query: Mapping[str, str]
    replies: list[Reply | Answer]
    served: int = 0

    def matches(self, path: str, params: Mapping[str, str]) -> bool:
        return path == self.path and all(params.get(k) == v for k, v in self.query.items())

    def next_reply(self, params: Mapping[str, str]) -> Reply:
        reply = self.replies[min(self.served, len(self.replies) - 1)]
        self.served += 1
        return reply if isinstance(reply, Reply) else reply(params)


class FakeApi:
    """The fake server; use the `fakeapi` fixture, which also points the source settings at it."""

    def __init__(self) -> None:
        self._routes: list[_Route] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self.requests: list[Seen] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fakeapi", daemon=True
        )

    def start(self) -> FakeApi:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._closing.set()  # release hanging handlers
        self._server.shutdown()
        self._server.server_close()

    def route(self, path: str, *replies: Reply | Answer, query: Mapping[str, str] | None = None) -> None:
        """Serve `replies` in order at `path` (last one repeats); `query` narrows the route to those params.

        A reply may be a function of the request's parameters (`Answer`), for answers that depend on them.
        """
        assert replies, "a route needs at least one reply"
        with self._lock:
            self._routes.append(_Route(path=path, query=dict(query or {}), replies=list(replies)))

    def seen(self, path: str | None = None) -> list[Seen]:
        """Requests received so far, optionally only those at `path`."""
        with self._lock:
            return [r for r in self.requests if path is None or r.path == path]

    def _answer(self, path: str, query: Mapping[str, list[str]]) -> Reply:
        seen = Seen(wall=time.time(), mono=time.monotonic(), path=path, query=query)
        with self._lock:
            self.requests.append(seen)
            candidates = [r for r in self._routes if r.matches(path, seen.params)]
            if not candidates:
                return json_reply({"error": f"fakeapi: no route for {path}"}, status=404)
            # the most specific route wins (most query constraints), then the latest added
            best = max(reversed(candidates), key=lambda r: len(r.query))
            return best.next_reply(seen.params)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802  (http.server's naming)
                parts = urlsplit(self.path)
                reply = fake._answer(parts.path, parse_qs(parts.query, keep_blank_values=True))
                if reply.delay and fake._closing.wait(reply.delay):
                    return
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    length = len(reply.body) if reply.content_length is None else reply.content_length
                    self.send_header("Content-Length", str(length))
                    self.end_headers()
                    self.wfile.write(reply.body)
                    if length != len(reply.body):
                        self.close_connection = True  # the rest never comes
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout); nothing to tell it

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (stdlib signature)
                pass

        return Handler


# Path prefixes the fake serves, mirroring the real APIs.
CTGOV = "/api/v2/studies"
EUTILS = "/entrez/eutils"
OPENFDA_LABEL = "/drug/label.json"
RXCUI = "/REST/rxcui.json"
APPROXIMATE = "/REST/approximateTerm.json"


@pytest.fixture
def fakeapi(settings: Any) -> Iterator[FakeApi]:
    """Start the fake, point every source at it, with fast retries and a generous rate limit."""
    from dossiers.sources import ratelimit

    fake = FakeApi().start()
    settings.CLINICALTRIALS_BASE_URL = f"{fake.url}/api/v2"
    settings.NCBI_EUTILS_BASE_URL = f"{fake.url}{EUTILS}"
    settings.OPENFDA_BASE_URL = fake.url
    settings.RXNAV_BASE_URL = fake.url
    settings.NCBI_API_KEY = ""
    settings.OPENFDA_API_KEY = ""
    settings.SOURCES_CONTACT_EMAIL = "evidence@portal.test"
    settings.SOURCES_TOOL_NAME = "portal-tests"
    settings.SOURCES_CONNECT_TIMEOUT = 2.0
    settings.SOURCES_READ_TIMEOUT = 2.0
    settings.SOURCES_MAX_RETRIES = 3
    settings.SOURCES_BACKOFF_BASE = 0.01
    settings.SOURCES_BACKOFF_MAX = 0.05
    settings.SOURCES_MAX_TOTAL_WAIT = 30.0
    for source, setting in ratelimit.RATE_SETTINGS.items():
        setattr(settings, setting, (1000, 1.0))
        ratelimit.reset(source)
    try:
        yield fake
    finally:
        fake.stop()
        for source in ratelimit.RATE_SETTINGS:
            ratelimit.reset(source)
