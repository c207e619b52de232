"""Source settings read from the environment: rates, numbers, and clear errors for bad values."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from portal.settings import env_float, env_rate


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("3/s", (3, 1.0)), ("240/min", (240, 60.0)), (" 50 / minute ", (50, 60.0)), ("1000/hour", (1000, 3600.0))],
)
def test_env_rate_parses_requests_per_period(monkeypatch: pytest.MonkeyPatch, raw: str, expected: tuple) -> None:
    monkeypatch.setenv("X_RATE", raw)

    assert env_rate("X_RATE", "1/s") == expected


def test_env_rate_default_applies_when_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("X_RATE", raising=False)

    assert env_rate("X_RATE", "50/min") == (50, 60.0)


@pytest.mark.parametrize("raw", ["fast", "0/s", "10/fortnight", "-1/s", "/s"])
def test_env_rate_rejects_bad_values_naming_the_variable(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("OPENFDA_RATE_LIMIT", raw)

    with pytest.raises(ImproperlyConfigured, match=r"OPENFDA_RATE_LIMIT=.* is not a rate; write it as N/s"):
        env_rate("OPENFDA_RATE_LIMIT", "240/min")


def test_env_float(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCES_READ_TIMEOUT", "2.5")
    assert env_float("SOURCES_READ_TIMEOUT", 30.0) == 2.5

    monkeypatch.setenv("SOURCES_READ_TIMEOUT", "soon")
    with pytest.raises(ImproperlyConfigured, match="SOURCES_READ_TIMEOUT='soon' is not a number"):
        env_float("SOURCES_READ_TIMEOUT", 30.0)

    monkeypatch.setenv("SOURCES_READ_TIMEOUT", "0")
    with pytest.raises(ImproperlyConfigured, match="must be at least 0.001"):
        env_float("SOURCES_READ_TIMEOUT", 30.0, minimum=0.001)
