"""Retries, Retry-After, timeouts and typed errors of the shared transport, against the local fake."""

from email.utils import formatdate

import pytest

from dossiers.sources import rxnorm, transport
from dossiers.sources.errors import MalformedResponse, NotFound, SourceError, SourceUnavailable, redact_url
from tests.fakeapi import (
    RECORDED_DIR,
    RXCUI,
    FakeApi,
    Reply,
    handmade,
    json_reply,
    raw_reply,
    recorded,
    shared_dir,
    truncated_reply,
)

OK = handmade("rxnav-rxcui-lenalidomide.handmade.json")


def ok() -> Reply:
    return Reply(body=OK.read_bytes(), headers={"Content-Type": "application/json"})


def test_429_with_retry_after_seconds_waits_at_least_that_long(fakeapi: FakeApi) -> None:
    fakeapi.route(RXCUI, raw_reply('{"error": "rate"}', status=429, **{"Retry-After": "1"}), ok())

    assert rxnorm.rxcui_by_name(name="lenalidomide") == ("342369",)

    first, second = fakeapi.seen(RXCUI)
    assert second.mono - first.mono >= 1.0


def test_429_with_retry_after_http_date_waits_until_that_date(fakeapi: FakeApi) -> None:
    import time

    target = int(time.time()) + 2
    fakeapi.route(RXCUI, raw_reply("", status=429, **{"Retry-After": formatdate(target, usegmt=True)}), ok())

    assert rxnorm.rxcui_by_name(name="lenalidomide") == ("342369",)

    _, second = fakeapi.seen(RXCUI)
    assert second.wall >= target


def test_429_twice_then_success_retries_each_time(fakeapi: FakeApi) -> None:
    busy = raw_reply("", status=429, **{"Retry-After": "0"})
    fakeapi.route(RXCUI, busy, busy, ok())

    assert rxnorm.rxcui_by_name(name="lenalidomide") == ("342369",)
    assert len(fakeapi.seen(RXCUI)) == 3


def test_500_then_success(fakeapi: FakeApi) -> None:
    fakeapi.route(RXCUI, raw_reply("oops", status=500), raw_reply("bad gateway", status=502), ok())

    assert rxnorm.rxcui_by_name(name="lenalidomide") == ("342369",)
    assert len(fakeapi.seen(RXCUI)) == 3


def test_500_forever_gives_up_after_the_configured_retries(fakeapi: FakeApi, settings) -> None:
    settings.SOURCES_MAX_RETRIES = 2
    fakeapi.route(RXCUI, raw_reply("oops", status=500))

    with pytest.raises(SourceUnavailable) as caught:
        rxnorm.rxcui_by_name(name="lenalidomide")

    assert len(fakeapi.seen(RXCUI)) == 3  # one try and two retries
    error = caught.value
    assert (error.source, error.status) == ("rxnav", 500)
    assert error.url.startswith(f"{fakeapi.url}{RXCUI}?name=lenalidomide")
    assert "gave up after 3 attempts: HTTP 500" in str(error)


def test_retry_after_beyond_the_total_wait_gives_up_at_once(fakeapi: FakeApi, settings) -> None:
    settings.SOURCES_MAX_TOTAL_WAIT = 5.0
    fakeapi.route(RXCUI, raw_reply("", status=503, **{"Retry-After": "3600"}), ok())

    with pytest.raises(SourceUnavailable) as caught:
        rxnorm.rxcui_by_name(name="lenalidomide")

    assert caught.value.status == 503
    assert len(fakeapi.seen(RXCUI)) == 1


def test_timeout_is_retried_then_succeeds(fakeapi: FakeApi, settings) -> None:
    settings.SOURCES_READ_TIMEOUT = 0.3
    fakeapi.route(RXCUI, Reply(delay=2.0), ok())

    assert rxnorm.rxcui_by_name(name="lenalidomide") == ("342369",)
    assert len(fakeapi.seen(RXCUI)) == 2


def test_timeout_forever_is_unavailable(fakeapi: FakeApi, settings) -> None:
    settings.SOURCES_READ_TIMEOUT = 0.2
    settings.SOURCES_MAX_RETRIES = 1
    fakeapi.route(RXCUI, Reply(delay=2.0))

    with pytest.raises(SourceUnavailable, match="timed out"):
        rxnorm.rxcui_by_name(name="lenalidomide")
    assert len(fakeapi.seen(RXCUI)) == 2


def test_connection_refused_is_unavailable(fakeapi: FakeApi, settings) -> None:
    fakeapi.stop()
    settings.SOURCES_MAX_RETRIES = 1

    with pytest.raises(SourceUnavailable, match="connection failed"):
        rxnorm.rxcui_by_name(name="lenalidomide")


def test_a_body_cut_off_before_its_content_length_is_retried(fakeapi: FakeApi) -> None:
    fakeapi.route(RXCUI, truncated_reply('{"idGroup": {"name": "lenalido'), ok())

    assert rxnorm.rxcui_by_name(name="lenalidomide") == ("342369",)
    assert len(fakeapi.seen(RXCUI)) == 2


def test_a_body_always_cut_off_is_unavailable_naming_the_error(fakeapi: FakeApi, settings) -> None:
    settings.SOURCES_MAX_RETRIES = 1
    fakeapi.route(RXCUI, truncated_reply('{"idGroup": '))

    with pytest.raises(SourceUnavailable) as caught:
        rxnorm.rxcui_by_name(name="lenalidomide")

    assert len(fakeapi.seen(RXCUI)) == 2
    assert "gave up after 2 attempts: response unreadable (ChunkedEncodingError" in str(caught.value)


def test_a_malformed_base_url_is_an_error_at_once(fakeapi: FakeApi, settings) -> None:
    settings.RXNAV_BASE_URL = "rxnav.example"  # no scheme

    with pytest.raises(SourceError, match="request not sent") as caught:
        rxnorm.rxcui_by_name(name="lenalidomide")

    assert not isinstance(caught.value, SourceUnavailable)


def test_client_error_is_not_retried(fakeapi: FakeApi) -> None:
    fakeapi.route(RXCUI, raw_reply('{"error": "bad parameter"}', status=400))

    with pytest.raises(SourceError) as caught:
        rxnorm.rxcui_by_name(name="lenalidomide")

    assert not isinstance(caught.value, SourceUnavailable)
    assert caught.value.status == 400
    assert len(fakeapi.seen(RXCUI)) == 1


def test_404_raises_not_found(fakeapi: FakeApi) -> None:
    fakeapi.route(RXCUI, json_reply({"error": "gone"}, status=404))

    with pytest.raises(NotFound):
        rxnorm.rxcui_by_name(name="lenalidomide")


def test_malformed_json_names_source_and_url(fakeapi: FakeApi) -> None:
    fakeapi.route(RXCUI, raw_reply('{"idGroup": {"name": "lenalido'))

    with pytest.raises(MalformedResponse) as caught:
        rxnorm.rxcui_by_name(name="lenalidomide")

    assert caught.value.source == "rxnav"
    assert "not valid JSON" in caught.value.message
    assert RXCUI in caught.value.url


def test_session_identifies_the_portal(fakeapi: FakeApi, settings) -> None:
    session = transport.build_session()

    assert session.headers["User-Agent"] == "portal-tests (mailto:evidence@portal.test)"


def test_recorded_fixtures_are_byte_identical_copies_of_the_shared_ones() -> None:
    shared = shared_dir() / "fixtures" / "external"
    if not shared.is_dir():
        pytest.skip(f"{shared} is not beside this clone; the copies were compared when they were made")
    originals = sorted(path.name for path in shared.iterdir() if path.is_file())
    copies = sorted(path.name for path in RECORDED_DIR.iterdir())
    assert copies == originals
    for name in originals:
        assert recorded(name).read_bytes() == (shared / name).read_bytes(), name


@pytest.mark.parametrize(
    ("header", "expected"),
    [(None, None), ("", None), ("7", 7.0), ("soon", None), ("Wed, 21 Oct 2015 07:28:00 GMT", 10.0)],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    now = 1445412470.0  # 07:27:50 GMT that day

    assert transport.parse_retry_after(header, now=now) == expected


def test_a_past_retry_after_date_means_no_wait() -> None:
    assert transport.parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    policy = transport.RetryPolicy(max_retries=5, backoff_base=1.0, backoff_max=4.0, max_total_wait=60.0)

    for retry, step in [(1, 1.0), (2, 2.0), (3, 4.0), (6, 4.0)]:
        waits = {policy.backoff(retry) for _ in range(50)}
        assert all(step / 2 <= w <= step for w in waits)
        assert len(waits) > 1  # jittered


def test_api_keys_are_redacted_from_urls() -> None:
    assert redact_url("https://x.test/a?term=b&api_key=SECRET&tool=t") == "https://x.test/a?term=b&api_key=***&tool=t"
    error = SourceError("boom", source="pubmed", url="https://x.test/a?api_key=SECRET")
    assert "SECRET" not in str(error)
