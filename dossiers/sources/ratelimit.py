"""Per-source request rate limit shared by every worker process through Redis (in-process without Redis).

Algorithm: evenly spaced slots (GCRA without burst). Each caller atomically reserves the next free slot
(a short Lua script on the Redis clock, so every process agrees on time) and sleeps until it; nobody
polls. Even spacing rather than a window counter: a counter lets a window's whole allowance leave in one
burst, and two bursts either side of a window edge look like twice the rate to the server.

Slots are spaced `SPACING_MARGIN` wider than the limit implies: a request leaves a little after its slot
(scheduling, connection set-up), and a late request followed by a punctual one would otherwise put
limit + 1 requests inside one period as the server counts them. The margin absorbs 8 % of a period
of lateness or jitter on the way to the server (measured: 5 % left one window in ~2,000 requests one
over the limit at 36/s on a 2-core machine) and costs 8 % of throughput.

Even spacing governs when a caller may go; what the server counts is when requests arrive, and on a
loaded machine a caller can be descheduled between its slot and its send for longer than the margin
(the benchmark saw 13 arrivals in one second at 12/s). So the last step before a request leaves is a
check against the sends themselves: a sliding-window log of send times per source (a sorted set in
Redis, on the Redis clock) admits a request only while fewer than `requests` were sent within the last
`period × (1 + WINDOW_GUARD)`, else the caller waits for the oldest to leave that window. Punctual
callers never wait there (limit + 1 slots span `SPACING_MARGIN` periods, more than the window); a late
one holds back the callers after it instead of arriving among them. The transport prepares the request
(URL, headers, proxy settings) before `acquire` and sends it at once after: only the socket write is
left between the check and the wire.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass

import redis
from django.conf import settings
from redis.commands.core import Script

from dossiers.sources.errors import RateLimiterUnavailable, RateLimitTimeout

log = logging.getLogger(__name__)
SPACING_MARGIN = 1.08
# A request sent this late after its slot (as a fraction of the period) could break the limit: see acquire().
# Below SPACING_MARGIN - 1, so that the margin still covers the lateness allowed plus the trip to the server.
LATE_FRACTION = 0.01
# The send log's window is this much longer than the period: the slack for the way from the check to the
# server (a socket write, the server's own scheduling). Below SPACING_MARGIN - 1, so punctual callers pass.
WINDOW_GUARD = 0.03
KEY_PREFIX = "portal:ratelimit:"
SENT_SUFFIX = ":sent"

# Source name -> setting holding its (requests, period in seconds) limit.
RATE_SETTINGS = {
    "clinicaltrials": "CLINICALTRIALS_RATE_LIMIT",
    "pubmed": "NCBI_RATE_LIMIT",
    "openfda": "OPENFDA_RATE_LIMIT",
    "rxnav": "RXNAV_RATE_LIMIT",
}

# KEYS[1] holds the next free slot (µs on the Redis clock). ARGV: interval µs, max wait µs.
# Returns the wait in µs, or -wait when it exceeds the maximum (nothing is reserved then).
# Numbers are written with %.0f: Lua's default tostring keeps 14 digits and would round the µs clock.
_RESERVE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local slot = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now)
local wait = slot - now
if wait > tonumber(ARGV[2]) then return -wait end
redis.call('SET', KEYS[1], string.format('%.0f', slot + interval), 'PX', math.ceil((wait + interval) / 1000) + 1000)
return wait
"""

# KEYS[1] is a sorted set of send times (µs on the Redis clock). ARGV: limit, window µs, a unique member tag.
# Admits (records the send, returns 0) while fewer than `limit` sends lie within the window; otherwise
# returns the µs until the limit-th newest send leaves the window.
_ADMIT_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now - window))
if redis.call('ZCARD', KEYS[1]) >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], -limit, -limit, 'WITHSCORES')
  return math.max(1, math.ceil(tonumber(oldest[2]) + window - now))
end
redis.call('ZADD', KEYS[1], string.format('%.0f', now), string.format('%.0f', now) .. ':' .. ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000)
return 0
"""

# Push the next free slot to at least now + ARGV[1] µs (a source's Retry-After holds every worker back).
_PAUSE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local until_ = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now + tonumber(ARGV[1]))
redis.call('SET', KEYS[1], string.format('%.0f', until_), 'PX', math.ceil((until_ - now) / 1000) + 1000)
return 1
"""


@dataclass(frozen=True)
class Rate:
    """A limit of `requests` per `period` seconds."""

    requests: int
    period: float

    @property
    def interval(self) -> float:
        """Seconds between two slots, margin included."""
        return self.period / self.requests * SPACING_MARGIN


def rate_for(source: str) -> Rate:
    """Return the configured rate of `source`."""
    try:
        setting = RATE_SETTINGS[source]
    except KeyError:
        raise ValueError(f"unknown source {source!r}; known: {', '.join(sorted(RATE_SETTINGS))}") from None
    requests, period = getattr(settings, setting)
    return Rate(requests=requests, period=period)


class _LocalSlots:
    """The same slot reservation for a single process, on the monotonic clock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next: dict[str, float] = {}
        self._sent: dict[str, deque[float]] = {}

    def admit(self, source: str, limit: int, window: float) -> float:
        """Record a send and return 0, or return the seconds until one may go (see the module docstring)."""
        with self._lock:
            now = time.monotonic()
            sent = self._sent.setdefault(source, deque())
            while sent and sent[0] <= now - window:
                sent.popleft()
            if len(sent) >= limit:
                return max(sent[-limit] + window - now, 1e-6)
            sent.append(now)
            return 0.0

    def reserve(self, source: str, interval: float, max_wait: float) -> float | None:
        with self._lock:
            now = time.monotonic()
            slot = max(self._next.get(source, 0.0), now)
            if slot - now > max_wait:
                return None
            self._next[source] = slot + interval
            return slot - now

    def pause(self, source: str, seconds: float) -> None:
        with self._lock:
            self._next[source] = max(self._next.get(source, 0.0), time.monotonic() + seconds)

    def reset(self, source: str) -> None:
        with self._lock:
            self._next.pop(source, None)
            self._sent.pop(source, None)


@dataclass(frozen=True)
class _RedisSlots:
    """The slot scripts registered on one Redis client (EVALSHA after the first call)."""

    client: redis.Redis
    reserve: Script
    pause: Script
    admit: Script


_local = _LocalSlots()
_redis_slots: dict[tuple[int, str], _RedisSlots] = {}


def _redis() -> _RedisSlots | None:
    """Return this process's Redis scripts, or None without REDIS_URL (a fork gets its own connection)."""
    url = settings.REDIS_URL
    if not url:
        return None
    key = (os.getpid(), url)
    if key not in _redis_slots:
        client = redis.Redis.from_url(url)
        _redis_slots[key] = _RedisSlots(
            client=client,
            reserve=client.register_script(_RESERVE_LUA),
            pause=client.register_script(_PAUSE_LUA),
            admit=client.register_script(_ADMIT_LUA),
        )
    return _redis_slots[key]


def acquire(source: str) -> float:
    """Block until `source` may be called; return the seconds waited. Raise RateLimitTimeout past the max wait.

    Send the request at once after this returns: the send log has recorded it as sent now.

    A caller that wakes more than `LATE_FRACTION` of the period after its slot (a loaded machine did not
    schedule it in time) gives the slot up and reserves a new one: sent late, it would land next to the
    punctual callers of the following slots and the server would count more than the limit in a window.
    """
    rate = rate_for(source)
    max_wait = settings.SOURCES_RATE_LIMIT_MAX_WAIT
    waited = 0.0
    while True:
        before = time.monotonic()  # the slot is at most `wait` after this, on any clock
        wait = _reserve(source, rate, max_wait - waited)
        if wait > 0:
            time.sleep(wait)
        waited += wait
        if time.monotonic() - (before + wait) > LATE_FRACTION * rate.period:
            continue
        # Sends went out closer together than their slots (someone was late): wait for the send log's window.
        while True:
            asked = time.monotonic()
            held = _admit(source, rate)
            if not held:
                break
            if waited + held > max_wait:
                raise _timeout(source, rate)
            time.sleep(held)
            waited += held
        # The send is logged at the check; an answer that came back late would make the send late after it:
        # that caller too takes a new slot (the logged send only holds others back a little longer).
        if time.monotonic() - asked <= LATE_FRACTION * rate.period:
            return waited


def _admit(source: str, rate: Rate) -> float:
    window = rate.period * (1 + WINDOW_GUARD)
    scripts = _redis()
    if scripts is None:
        return _local.admit(source, rate.requests, window)
    try:
        micros = int(
            scripts.admit(keys=[KEY_PREFIX + source + SENT_SUFFIX], args=[rate.requests, int(window * 1e6), _tag()])
        )
    except redis.RedisError as exc:
        raise _unavailable(source, exc) from exc
    return micros / 1e6


def _tag() -> str:
    return f"{os.getpid()}.{threading.get_ident()}.{time.monotonic_ns()}"


def _unavailable(source: str, exc: Exception) -> RateLimiterUnavailable:
    return RateLimiterUnavailable(
        f"the shared rate limiter could not be asked ({type(exc).__name__}: {exc})", source=source, url=""
    )


def _timeout(source: str, rate: Rate) -> RateLimitTimeout:
    return RateLimitTimeout(
        f"rate limit {rate.requests}/{rate.period:g}s would need a wait over the "
        f"{settings.SOURCES_RATE_LIMIT_MAX_WAIT:g} s allowed",
        source=source,
        url="",
    )


def _reserve(source: str, rate: Rate, max_wait: float) -> float:
    scripts = _redis()
    if scripts is None:
        wait = _local.reserve(source, rate.interval, max(max_wait, 0.0))
    else:
        try:
            micros = int(
                scripts.reserve(
                    keys=[KEY_PREFIX + source], args=[int(rate.interval * 1e6), int(max(max_wait, 0.0) * 1e6)]
                )
            )
        except redis.RedisError as exc:
            raise _unavailable(source, exc) from exc
        wait = None if micros < 0 else micros / 1e6
    if wait is None:
        raise _timeout(source, rate)
    return wait


def pause(source: str, seconds: float) -> None:
    """Hold every caller of `source` back for `seconds` (the source asked us to, with Retry-After)."""
    scripts = _redis()
    if scripts is None:
        _local.pause(source, seconds)
    else:
        try:
            scripts.pause(keys=[KEY_PREFIX + source], args=[int(seconds * 1e6)])
        except redis.RedisError as exc:  # the caller still waits Retry-After before its retry; others may not
            log.warning("%s: could not pause the other workers for %.0f s (%s)", source, seconds, exc)


def reset(source: str) -> None:
    """Forget the reserved slots of `source` (tests, or after changing its rate)."""
    scripts = _redis()
    if scripts is None:
        _local.reset(source)
    else:
        scripts.client.delete(KEY_PREFIX + source, KEY_PREFIX + source + SENT_SUFFIX)
