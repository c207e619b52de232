"""A caller that wakes too late for its rate-limit slot takes a new one instead of crowding the next caller."""

from __future__ import annotations

import time

import pytest

from dossiers.sources import ratelimit


def test_a_late_wake_up_gives_the_slot_up(settings, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.REDIS_URL = ""
    settings.RXNAV_RATE_LIMIT = (10, 1.0)
    ratelimit.reset("rxnav")
    ratelimit.acquire("rxnav")  # the next free slot is now ~0.1 s away
    real_sleep, naps = time.sleep, []

    def oversleep(seconds: float) -> None:
        naps.append(seconds)
        real_sleep(seconds + (0.2 if len(naps) == 1 else 0.0))  # descheduled once, for 0.2 s

    monkeypatch.setattr(ratelimit.time, "sleep", oversleep)
    reserved: list[float] = []
    real_reserve = ratelimit._reserve

    def counting_reserve(*args, **kwargs) -> float:  # type: ignore[no-untyped-def]
        reserved.append(real_reserve(*args, **kwargs))
        return reserved[-1]

    monkeypatch.setattr(ratelimit, "_reserve", counting_reserve)
    try:
        waited = ratelimit.acquire("rxnav")
    finally:
        ratelimit.reset("rxnav")

    # the late first slot was dropped; the second was free at once (the one after the dropped slot had passed)
    assert len(reserved) == 2 and reserved[0] > 0.05 and reserved[1] == pytest.approx(0.0, abs=0.01)
    assert waited == pytest.approx(sum(reserved))


def test_a_punctual_caller_keeps_its_slot(settings) -> None:
    settings.REDIS_URL = ""
    settings.RXNAV_RATE_LIMIT = (1000, 1.0)
    ratelimit.reset("rxnav")
    try:
        started = time.monotonic()
        for _ in range(5):
            ratelimit.acquire("rxnav")
        assert time.monotonic() - started < 0.5
    finally:
        ratelimit.reset("rxnav")
