"""Errors raised by the source clients; each names the source, the URL (keys redacted) and the HTTP status."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# Query parameters never shown in errors or query logs.
SECRET_PARAMS = frozenset({"api_key"})


def redact_url(url: str) -> str:
    """Return `url` with secret query parameters replaced by "***"."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    pairs = [(key, "***" if key in SECRET_PARAMS else value) for key, value in parse_qsl(parts.query, True)]
    return urlunsplit(parts._replace(query=urlencode(pairs, safe="*")))


class SourceError(Exception):
    """A source request failed; `message` says what, `url` where, `status` the HTTP status if any."""

    def __init__(self, message: str, *, source: str, url: str, status: int | None = None) -> None:
        self.message = message
        self.source = source
        self.url = redact_url(url)
        self.status = status
        super().__init__(str(self))

    def __str__(self) -> str:
        status = f" (HTTP {self.status})" if self.status is not None else ""
        where = f" — {self.url}" if self.url else ""
        return f"{self.source}: {self.message}{status}{where}"


class SourceUnavailable(SourceError):
    """The source could not be reached or kept failing after every retry; try again later."""


class RateLimitTimeout(SourceUnavailable):
    """The shared rate limit did not let this request go: the wait would be longer than allowed."""


class RateLimiterUnavailable(RateLimitTimeout):
    """The shared rate limiter (Redis) could not be asked, so the request was not sent."""


class NotFound(SourceError):
    """The source answered 404 for this URL."""


class MalformedResponse(SourceError):
    """The source answered 2xx but not in the documented shape; `message` names what is missing or wrong."""
