"""HTTP for the source clients: one session per process, timeouts, the shared rate limit and retries.

Retries use tenacity around each whole attempt, not urllib3's `Retry` in the adapter: urllib3 retries
inside the connection pool, below `requests`, so a retried attempt would skip the shared rate limiter
and its Retry-After sleep could not be capped by our total budget. Here every attempt first takes a
rate-limit slot; 429, 5xx (500, 502, 503, 504) and every `requests` error (connection refused or reset,
timeouts, a body cut off before its Content-Length, undecodable content; not a malformed URL) are retried with
exponential backoff and equal jitter, waiting at least the `Retry-After` the source sent (seconds or an
HTTP date), until `SOURCES_MAX_RETRIES` retries are spent or the next wait would pass
`SOURCES_MAX_TOTAL_WAIT` seconds since the first attempt. A `Retry-After` also pauses the other workers.
"""

from __future__ import annotations

import os
import random
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from tenacity import (
    RetryCallState,
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
)

from dossiers.sources import ratelimit
from dossiers.sources.errors import MalformedResponse, NotFound, SourceError, SourceUnavailable, redact_url

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# The only request errors that are not transient: a malformed URL (a setting is wrong).
NOT_RETRIED = (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema)

Params = Mapping[str, str | int]


class _Transient(Exception):
    """An attempt failed in a way worth retrying."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry; read from settings at each call so tests and env can change it."""

    max_retries: int
    backoff_base: float
    backoff_max: float
    max_total_wait: float

    @classmethod
    def from_settings(cls) -> RetryPolicy:
        return cls(
            max_retries=settings.SOURCES_MAX_RETRIES,
            backoff_base=settings.SOURCES_BACKOFF_BASE,
            backoff_max=settings.SOURCES_BACKOFF_MAX,
            max_total_wait=settings.SOURCES_MAX_TOTAL_WAIT,
        )

    def backoff(self, retry_number: int) -> float:
        """Exponential backoff with equal jitter: half of the step fixed, half random."""
        step = min(self.backoff_max, self.backoff_base * 2 ** (retry_number - 1))
        return step / 2 + random.uniform(0, step / 2)  # noqa: S311  (jitter, not cryptography)


def build_session() -> requests.Session:
    """Return a new session identifying the portal; no adapter-level retries (see the module docstring)."""
    session = requests.Session()
    session.headers["User-Agent"] = f"{settings.SOURCES_TOOL_NAME} (mailto:{settings.SOURCES_CONTACT_EMAIL})"
    adapter = HTTPAdapter(max_retries=0, pool_connections=4, pool_maxsize=8)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


_sessions: dict[int, requests.Session] = {}


def get_session() -> requests.Session:
    """Return this process's shared session (a forked worker builds its own)."""
    pid = os.getpid()
    if pid not in _sessions:
        _sessions[pid] = build_session()
    return _sessions[pid]


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Return the seconds to wait from a Retry-After header (delta-seconds or HTTP date), or None."""
    if not value or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:  # an HTTP date is always GMT
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


def query_url(url: str, params: Params | None = None) -> str:
    """Return the full GET URL for `url` and `params`, secrets redacted (for errors and query logs)."""
    try:
        prepared = requests.Request("GET", url, params=dict(params or {})).prepare()
    except requests.RequestException:  # a malformed URL: show it as it is, the request will say why it failed
        return redact_url(f"{url}?{urlencode(dict(params or {}))}" if params else url)
    return redact_url(prepared.url or url)


_sent: ContextVar[list[str] | None] = ContextVar("sources_sent", default=None)


@contextmanager
def recording_sends() -> Iterator[list[str]]:
    """Collect the (redacted) URLs of the requests sent inside the block, retries included, in order.

    A failure after some requests went out (a rate-limit wait too long for a retry, or for the second
    query of a search) is an error of a query that was made, never "not queried".
    """
    sent: list[str] = []
    token = _sent.set(sent)
    try:
        yield sent
    finally:
        _sent.reset(token)


def _attempt(source: str, url: str, params: Params | None, session: requests.Session) -> requests.Response:
    """Send one rate-limited GET; return a 2xx response or raise.

    Everything `session.get` would do before sending (URL encoding, headers, proxy and certificate
    settings from the environment) is done before the rate-limit slot is taken, and the request is sent
    as soon as it is granted: the limiter's clock is then the send's (see ratelimit's docstring).
    """
    try:
        prepared = session.prepare_request(requests.Request("GET", url, params=dict(params or {})))
        options = session.merge_environment_settings(prepared.url, {}, None, None, None)
    except NOT_RETRIED as exc:  # our URL is wrong: asking again cannot help
        raise SourceError(f"request not sent: {exc}", source=source, url=url) from exc
    timeout = (settings.SOURCES_CONNECT_TIMEOUT, settings.SOURCES_READ_TIMEOUT)
    shown = redact_url(prepared.url or url)
    sent = _sent.get()
    ratelimit.acquire(source)
    try:
        response = session.send(prepared, timeout=timeout, allow_redirects=True, **options)
    except requests.Timeout as exc:
        raise _Transient(f"timed out ({type(exc).__name__})") from exc
    except requests.ConnectionError as exc:
        raise _Transient(f"connection failed ({type(exc).__name__})") from exc
    except requests.RequestException as exc:
        # A body cut off before its Content-Length (ChunkedEncodingError), undecodable content, too many
        # redirects...: the source or the network misbehaved once; like a timeout, worth another try.
        raise _Transient(f"response unreadable ({type(exc).__name__}: {exc})") from exc
    finally:
        if sent is not None:
            sent.append(shown)
    status = response.status_code
    if status in RETRY_STATUSES:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if retry_after:
            ratelimit.pause(source, retry_after)
        raise _Transient(f"HTTP {status}", status=status, retry_after=retry_after)
    if status == 404:
        raise NotFound("not found", source=source, url=response.url, status=status)
    if status >= 400:
        raise SourceError(f"request refused: {response.text[:200]!r}", source=source, url=response.url, status=status)
    return response


def _wait_for(policy: RetryPolicy) -> Callable[[RetryCallState], float]:
    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        retry_after = getattr(error, "retry_after", None) or 0.0
        return max(retry_after, policy.backoff(state.attempt_number))

    return wait


def get(source: str, url: str, *, params: Params | None = None, policy: RetryPolicy | None = None) -> requests.Response:
    """GET `url` for `source` with rate limit and retries; raise SourceUnavailable when retries run out."""
    policy = policy or RetryPolicy.from_settings()
    session = get_session()
    retrying = Retrying(
        stop=stop_after_attempt(policy.max_retries + 1) | stop_before_delay(policy.max_total_wait),
        wait=_wait_for(policy),
        retry=retry_if_exception_type(_Transient),
    )
    try:
        for attempt in retrying:
            with attempt:
                return _attempt(source, url, params, session)
    except RetryError as exc:
        last = exc.last_attempt.exception()
        assert isinstance(last, _Transient)  # only _Transient is retried
        tries = exc.last_attempt.attempt_number
        raise SourceUnavailable(
            f"gave up after {tries} attempt{'s' if tries > 1 else ''}: {last.message}",
            source=source,
            url=query_url(url, params),
            status=last.status,
        ) from last
    raise AssertionError("tenacity ended without a result")  # pragma: no cover


@dataclass(frozen=True)
class Payload:
    """A parsed response body with the source and (redacted) URL it came from, for error messages."""

    source: str
    url: str
    body: Any

    def malformed(self, what: str) -> MalformedResponse:
        return MalformedResponse(what, source=self.source, url=self.url)


def get_json(source: str, url: str, *, params: Params | None = None) -> Payload:
    """GET and parse JSON; raise MalformedResponse when the body is not JSON."""
    response = get(source, url, params=params)
    try:
        body = response.json()
    except ValueError as exc:
        raise MalformedResponse(f"response is not valid JSON: {exc}", source=source, url=response.url) from exc
    return Payload(source=source, url=redact_url(response.url), body=body)


def get_xml(source: str, url: str, *, params: Params | None = None) -> Payload:
    """GET and parse XML (stdlib expat: no external entities, entity expansion capped); body is the root."""
    response = get(source, url, params=params)
    try:
        root = ET.fromstring(response.content)
    except ET.ParseError as exc:
        raise MalformedResponse(f"response is not valid XML: {exc}", source=source, url=response.url) from exc
    return Payload(source=source, url=redact_url(response.url), body=root)


def need(payload: Payload, obj: Any, path: str, kind: type | tuple[type, ...]) -> Any:
    """Return `obj[path]` (dotted keys) checked against `kind`; raise MalformedResponse naming the path."""
    value = obj
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            raise payload.malformed(f"missing {path!r}")
        value = value[key]
    if not isinstance(value, kind):
        raise payload.malformed(f"{path!r} is {type(value).__name__}, expected {_names(kind)}")
    return value


def opt(payload: Payload, obj: Any, path: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
    """Like `need`, but a missing key (or null) gives `default`; a wrong type is still malformed."""
    value = obj
    for key in path.split("."):
        if value is None:
            return default
        if not isinstance(value, dict):
            raise payload.malformed(f"{path!r}: expected an object holding {key!r}, got {type(value).__name__}")
        value = value.get(key)
    if value is None:
        return default
    if not isinstance(value, kind):
        raise payload.malformed(f"{path!r} is {type(value).__name__}, expected {_names(kind)}")
    return value


def texts(payload: Payload, obj: Any, path: str) -> tuple[str, ...]:
    """The strings of the list at `path`: missing or null gives (), a lone string counts as a list of one
    (sources are not consistent about it), numbers are written out; any other item is malformed, named."""
    value = opt(payload, obj, path, (list, str, int, float), [])
    items = [value] if isinstance(value, (str, int, float)) else value
    out = []
    for number, item in enumerate(items):
        if isinstance(item, bool) or not isinstance(item, (str, int, float)):
            raise payload.malformed(f"{path}[{number}] is {type(item).__name__}, expected a string")
        if str(item).strip():
            out.append(str(item).strip())
    return tuple(out)


def objects(payload: Payload, obj: Any, path: str) -> list[dict[str, Any]]:
    """The objects of the list at `path` (missing or null gives []); an item that is not an object is malformed."""
    items = opt(payload, obj, path, list, [])
    for number, item in enumerate(items):
        if not isinstance(item, dict):
            raise payload.malformed(f"{path}[{number}] is {type(item).__name__}, expected an object")
    return items


def _names(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)
