"""The per-source rate limit: never more than the limit in any window as the fake server counts, ≥ 0.9 of it."""

import multiprocessing
import threading
import time
from collections.abc import Sequence

import pytest

from dossiers.sources import ratelimit, rxnorm, transport
from dossiers.sources.errors import RateLimitTimeout, SourceUnavailable
from tests.fakeapi import RXCUI, FakeApi, file_reply, handmade

LIMIT = 20  # requests per second in these tests


def max_in_any_window(times: Sequence[float], period: float) -> int:
    """The most requests that arrived within any half-open window [t, t + period)."""
    ordered = sorted(times)
    most, end = 0, 0
    for start, t in enumerate(ordered):
        while end < len(ordered) and ordered[end] < t + period:
            end += 1
        most = max(most, end - start)
    return most


def achieved_fraction(times: Sequence[float], limit: int, period: float) -> float:
    ordered = sorted(times)
    rate = (len(ordered) - 1) / (ordered[-1] - ordered[0])
    return rate / (limit / period)


def _hammer(seconds: float) -> None:
    """Call RxNav as fast as the limiter allows for `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        rxnorm.rxcui_by_name(name="lenalidomide")


@pytest.fixture
def limited(fakeapi: FakeApi, settings) -> FakeApi:
    settings.RXNAV_RATE_LIMIT = (LIMIT, 1.0)
    ratelimit.reset("rxnav")
    fakeapi.route(RXCUI, file_reply(handmade("rxnav-rxcui-lenalidomide.handmade.json")))
    return fakeapi


def _assert_within_limit(fakeapi: FakeApi) -> None:
    arrivals = [r.mono for r in fakeapi.seen(RXCUI)]
    assert len(arrivals) >= 1.5 * LIMIT  # about 2 s of traffic
    assert max_in_any_window(arrivals, 1.0) <= LIMIT
    assert achieved_fraction(arrivals, LIMIT, 1.0) >= 0.9


def test_window_counter_helper() -> None:
    assert max_in_any_window([0.0, 0.5, 0.99, 1.0, 1.5], 1.0) == 3
    assert max_in_any_window([0.0, 1.0, 2.0], 1.0) == 1


def test_in_process_limit_with_two_threads(limited: FakeApi, settings) -> None:
    settings.REDIS_URL = ""
    ratelimit.reset("rxnav")

    threads = [threading.Thread(target=_hammer, args=(2.0,)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    _assert_within_limit(limited)


@pytest.mark.services
def test_redis_limit_is_shared_by_two_processes(limited: FakeApi) -> None:
    context = multiprocessing.get_context("fork")  # children inherit the test settings
    workers = [context.Process(target=_hammer, args=(2.0,)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)

    assert [w.exitcode for w in workers] == [0, 0]
    _assert_within_limit(limited)


@pytest.mark.parametrize("backend", ["local", pytest.param("redis", marks=pytest.mark.services)])
def test_a_wait_beyond_the_maximum_raises_and_reserves_nothing(settings, backend: str) -> None:
    if backend == "local":
        settings.REDIS_URL = ""
    settings.RXNAV_RATE_LIMIT = (1, 60.0)
    settings.SOURCES_RATE_LIMIT_MAX_WAIT = 1.0
    ratelimit.reset("rxnav")
    try:
        assert ratelimit.acquire("rxnav") == 0.0
        with pytest.raises(RateLimitTimeout, match=r"rate limit 1/60s would need a wait over the 1 s allowed"):
            ratelimit.acquire("rxnav")
        settings.RXNAV_RATE_LIMIT = (1000, 1.0)
        ratelimit.reset("rxnav")
        assert ratelimit.acquire("rxnav") == 0.0
    finally:
        ratelimit.reset("rxnav")


@pytest.mark.parametrize("backend", ["local", pytest.param("redis", marks=pytest.mark.services)])
def test_pause_holds_every_caller_back(settings, backend: str) -> None:
    if backend == "local":
        settings.REDIS_URL = ""
    settings.RXNAV_RATE_LIMIT = (1000, 1.0)
    ratelimit.reset("rxnav")
    try:
        ratelimit.pause("rxnav", 0.5)
        assert ratelimit.acquire("rxnav") > 0.4
    finally:
        ratelimit.reset("rxnav")


def test_a_429_retry_after_pauses_the_other_callers(fakeapi: FakeApi, settings) -> None:
    settings.REDIS_URL = ""
    fakeapi.route(RXCUI, file_reply(handmade("rxnav-rxcui-lenalidomide.handmade.json")))
    fakeapi.route(
        RXCUI,
        file_reply(handmade("rxnav-rxcui-no-match.handmade.json"), status=429, headers={"Retry-After": "1"}),
        query={"name": "busy"},
    )
    settings.SOURCES_MAX_RETRIES = 0

    with pytest.raises(SourceUnavailable, match="HTTP 429"):
        rxnorm.rxcui_by_name(name="busy")

    assert ratelimit.acquire("rxnav") > 0.5


def test_unknown_source() -> None:
    with pytest.raises(ValueError, match="unknown source 'nope'"):
        ratelimit.rate_for("nope")


def test_rates_come_from_settings(settings) -> None:
    settings.NCBI_RATE_LIMIT = (10, 1.0)

    rate = ratelimit.rate_for("pubmed")

    assert (rate.requests, rate.period) == (10, 1.0)
    assert rate.interval == pytest.approx(0.1 * ratelimit.SPACING_MARGIN)


@pytest.mark.parametrize("backend", ["local", pytest.param("redis", marks=pytest.mark.services)])
def test_the_send_log_admits_at_most_the_limit_per_window(settings, backend: str) -> None:
    if backend == "local":
        settings.REDIS_URL = ""
    settings.RXNAV_RATE_LIMIT = (3, 0.5)
    rate = ratelimit.rate_for("rxnav")
    ratelimit.reset("rxnav")
    try:
        assert [ratelimit._admit("rxnav", rate) for _ in range(3)] == [0.0, 0.0, 0.0]
        held = ratelimit._admit("rxnav", rate)  # a fourth send within the window is held back...
        assert 0.45 < held <= 0.5 * (1 + ratelimit.WINDOW_GUARD) + 0.01
        time.sleep(held)
        assert ratelimit._admit("rxnav", rate) == 0.0  # ...until the oldest has left it
    finally:
        ratelimit.reset("rxnav")


@pytest.mark.parametrize("backend", ["local", pytest.param("redis", marks=pytest.mark.services)])
def test_a_caller_whose_slot_is_free_still_waits_when_late_sends_crowd_the_window(settings, backend: str) -> None:
    if backend == "local":
        settings.REDIS_URL = ""
    settings.RXNAV_RATE_LIMIT = (4, 1.0)
    rate = ratelimit.rate_for("rxnav")
    ratelimit.reset("rxnav")
    try:
        for _ in range(4):  # four callers, descheduled after their slots, all sent just now
            ratelimit._admit("rxnav", rate)
        started = time.monotonic()
        ratelimit.acquire("rxnav")  # the next slot is free at once, but the server would count five
        assert time.monotonic() - started >= 1.0
    finally:
        ratelimit.reset("rxnav")


def test_punctual_callers_never_wait_for_the_send_log(limited: FakeApi, settings, monkeypatch) -> None:
    settings.REDIS_URL = ""
    ratelimit.reset("rxnav")
    holds: list[float] = []
    real_admit = ratelimit._admit

    def counting(source: str, rate: ratelimit.Rate) -> float:
        holds.append(real_admit(source, rate))
        return holds[-1]

    monkeypatch.setattr(ratelimit, "_admit", counting)
    _hammer(2.0)

    assert len(holds) >= 1.5 * LIMIT and not any(holds)
    _assert_within_limit(limited)


def test_the_request_is_prepared_before_the_slot_and_sent_right_after(fakeapi: FakeApi, monkeypatch) -> None:
    fakeapi.route(RXCUI, file_reply(handmade("rxnav-rxcui-lenalidomide.handmade.json")))
    session = transport.get_session()
    steps: list[str] = []
    for name in ("prepare_request", "merge_environment_settings", "send"):
        real = getattr(session, name)

        def step(*args, _name=name, _real=real, **kwargs):  # type: ignore[no-untyped-def]
            steps.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(session, name, step)
    real_acquire = ratelimit.acquire

    def acquire(source: str) -> float:
        steps.append("acquire")
        return real_acquire(source)

    monkeypatch.setattr(ratelimit, "acquire", acquire)

    rxnorm.rxcui_by_name(name="lenalidomide")

    assert steps == ["prepare_request", "merge_environment_settings", "acquire", "send"]
