"""Whatever goes wrong during a refresh ends its run with a recorded status: never left "running"."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import datetime, timedelta

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.db import DataError, OperationalError
from django.test import Client
from django.utils import timezone

from dossiers.models import Candidate, RefreshRun
from dossiers.services import refresh
from dossiers.sources import ratelimit
from portal.roles import Role
from tests.factories import make_market, make_user
from tests.fakeapi import CTGOV, EUTILS, FakeApi, json_reply, raw_reply, truncated_reply
from tests.refresh.seedfake import esummary_json, route_seed
from tests.refresh.test_refresh_service import refresh_all, runs

pytestmark = pytest.mark.django_db

Status = RefreshRun.Status


def test_a_response_cut_off_mid_way_is_an_error_not_a_run_left_running(seed: Candidate, fakeapi: FakeApi) -> None:
    route_seed(fakeapi)
    fakeapi.route(CTGOV, truncated_reply('{"studies": [{"protocolSection": '))

    log = runs(refresh_all(seed))

    assert log["clinicaltrials"].status == Status.ERROR
    assert "response unreadable (ChunkedEncodingError" in log["clinicaltrials"].error
    assert log["clinicaltrials"].finished_at is not None
    assert log["pubmed"].status == Status.SUCCESS


def test_bare_author_names_are_read_and_an_odd_author_fails_the_run_naming_the_field(
    seed: Candidate, fakeapi: FakeApi
) -> None:
    route_seed(fakeapi, pmids=["40000001"])
    body = esummary_json(["40000001"])
    body["result"]["40000001"]["authors"] = ["Smith J"]
    fakeapi.route(f"{EUTILS}/esummary.fcgi", json_reply(body))

    assert runs(refresh_all(seed))["pubmed"].status == Status.SUCCESS

    body["result"]["40000001"]["authors"] = [["Smith", "J"]]
    fakeapi.route(f"{EUTILS}/esummary.fcgi", json_reply(body))
    paper = runs(refresh_all(seed))["pubmed"]
    assert paper.status == Status.ERROR and "result.40000001.authors[0] is list" in paper.error


@pytest.mark.parametrize("error", [RuntimeError("boom"), DataError("value too long for type character varying(12)")])
def test_an_unexpected_error_while_applying_is_recorded_and_writes_nothing(
    seed: Candidate, fakeapi: FakeApi, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    route_seed(fakeapi)

    def fail(*args: object) -> None:
        raise error

    monkeypatch.setattr(refresh, "_paper_values", fail)
    before = seed.publication_links.count()

    log = runs(refresh_all(seed))

    assert log["pubmed"].status == Status.ERROR
    assert log["pubmed"].error.startswith(f"unexpected {type(error).__name__}: ")
    assert log["pubmed"].query  # the query that was made is shown with the error
    assert seed.publication_links.count() == before
    assert log["clinicaltrials"].status == Status.SUCCESS  # the other query of the task still ran


def test_an_unreachable_rate_limiter_means_not_queried_with_the_reason(
    seed: Candidate, fakeapi: FakeApi, settings
) -> None:
    route_seed(fakeapi)
    working = settings.REDIS_URL
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    try:
        log = runs(refresh_all(seed))
    finally:
        settings.REDIS_URL = working  # for the fake's clean-up

    assert {r.status for r in log.values()} == {Status.NOT_QUERIED}
    assert "shared rate limiter could not be asked (ConnectionError" in log["pubmed"].error
    assert fakeapi.seen() == []


def test_at_the_soft_time_limit_the_run_and_the_queries_not_reached_say_so(
    seed: Candidate, fakeapi: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    route_seed(fakeapi)
    request_id = uuid.uuid4()
    refresh._pending_runs(request_id, [Candidate.objects.select_related("dossier").get(pk=seed.pk)], None)

    def stopped(**kwargs: object) -> None:
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(refresh.clinicaltrials, "search_studies", stopped)
    with pytest.raises(SoftTimeLimitExceeded):
        refresh.candidate_refresh(candidate_id=seed.pk, request_id=request_id)

    log = runs(request_id)
    assert log["clinicaltrials"].status == Status.ERROR and "time limit" in log["clinicaltrials"].error
    assert log["pubmed"].status == Status.NOT_QUERIED
    assert log["pubmed"].error == "not sent: the task reached its time limit before this query"


def test_a_lost_database_connection_is_raised_for_the_task_to_retry(
    seed: Candidate, fakeapi: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    route_seed(fakeapi)
    request_id = uuid.uuid4()

    def lost(**kwargs: object) -> None:
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(refresh.clinicaltrials, "search_studies", lost)
    with pytest.raises(OperationalError):
        refresh.candidate_refresh(candidate_id=seed.pk, request_id=request_id)

    assert runs(request_id)["clinicaltrials"].status == Status.RUNNING  # claimed again by the retry
    monkeypatch.undo()
    refresh.candidate_refresh(candidate_id=seed.pk, request_id=request_id)
    assert runs(request_id)["clinicaltrials"].status == Status.SUCCESS


def _one_slot_an_hour(settings, setting: str, source: str) -> None:
    settings.REDIS_URL = ""
    setattr(settings, setting, (1, 3600.0))
    settings.SOURCES_RATE_LIMIT_MAX_WAIT = 0.5
    ratelimit.reset(source)


def test_a_rate_limit_wait_too_long_for_a_retry_is_an_error_of_a_query_that_was_sent(
    seed: Candidate, fakeapi: FakeApi, settings
) -> None:
    route_seed(fakeapi)
    fakeapi.route(CTGOV, raw_reply("busy", status=503, content_type="text/plain"))
    _one_slot_an_hour(settings, "CLINICALTRIALS_RATE_LIMIT", "clinicaltrials")

    trials = runs(refresh_all(seed))["clinicaltrials"]

    assert trials.status == Status.ERROR
    assert "rate limit 1/3600s" in trials.error and "after 1 request had been sent (" in trials.error
    assert len(fakeapi.seen(CTGOV)) == 1


def test_a_rate_limit_wait_too_long_for_esummary_after_esearch_is_an_error(
    seed: Candidate, fakeapi: FakeApi, settings
) -> None:
    route_seed(fakeapi)
    _one_slot_an_hour(settings, "NCBI_RATE_LIMIT", "pubmed")

    papers = runs(refresh_all(seed))["pubmed"]

    assert papers.status == Status.ERROR
    assert "after 1 request had been sent (" in papers.error and "esearch.fcgi" in papers.error
    assert [r.path for r in fakeapi.seen() if r.path.startswith(EUTILS)] == [f"{EUTILS}/esearch.fcgi"]


def _ago(seconds: float) -> datetime:
    return timezone.now() - timedelta(seconds=seconds)


def test_the_sweep_ends_runs_whose_worker_or_task_was_lost_and_the_page_stops_polling(
    seed: Candidate, fakeapi: FakeApi, settings, django_capture_on_commit_callbacks
) -> None:
    route_seed(fakeapi)
    settings.EVIDENCE_REFRESH_RUN_LIMIT, settings.EVIDENCE_REFRESH_QUEUE_LIMIT = 660, 1860
    curator = make_user("curator", Role.CURATOR, markets=[make_market("IN")])
    stuck = refresh.candidate_refresh_request(candidate_id=seed.pk, by=curator)  # tasks never sent
    log = runs(stuck.request_id)
    RefreshRun.objects.filter(pk=log["clinicaltrials"].pk).update(status=Status.RUNNING, started_at=_ago(700))
    RefreshRun.objects.filter(pk=log["pubmed"].pk).update(enqueued_at=_ago(1900))
    RefreshRun.objects.filter(pk=log["rxnav"].pk).update(status=Status.RUNNING, started_at=_ago(600))  # alive
    RefreshRun.objects.filter(pk=log["openfda"].pk).update(enqueued_at=None, created_at=_ago(7200))  # dispatcher's
    client = Client()
    client.force_login(curator)
    assert "Refreshing: 0 of 4 queries done" in client.get(f"/candidates/{seed.pk}/").content.decode()

    assert refresh.refresh_runs_sweep() == 2

    log = runs(stuck.request_id)
    assert log["clinicaltrials"].status == Status.ERROR and log["clinicaltrials"].error.startswith("lost: worker lost")
    assert log["pubmed"].status == Status.ERROR and log["pubmed"].error.startswith("lost: task lost")
    assert (log["rxnav"].status, log["openfda"].status) == (Status.RUNNING, Status.PENDING)
    RefreshRun.objects.filter(pk__in=[log["rxnav"].pk, log["openfda"].pk]).update(status=Status.SUCCESS)
    page = client.get(f"/candidates/{seed.pk}/").content.decode()
    assert "Refreshing:" not in page and "worker lost" in page
    # the button starts a new refresh instead of pointing at the lost one
    with django_capture_on_commit_callbacks(execute=True):
        again = refresh.candidate_refresh_request(candidate_id=seed.pk, by=curator)
    assert again.request_id != stuck.request_id
    assert runs(again.request_id)["clinicaltrials"].status == Status.SUCCESS


def test_a_second_press_reuses_a_refresh_still_in_progress_only(seed: Candidate, settings) -> None:
    settings.EVIDENCE_REFRESH_QUEUE_LIMIT = 1860
    curator = make_user("curator", Role.CURATOR, markets=[make_market("IN")])
    first = refresh.candidate_refresh_request(candidate_id=seed.pk, by=curator)  # tasks never sent

    assert refresh.candidate_refresh_request(candidate_id=seed.pk, by=curator).request_id == first.request_id
    RefreshRun.objects.filter(request_id=first.request_id).update(enqueued_at=_ago(1900))  # older than a task can wait
    assert refresh.candidate_refresh_request(candidate_id=seed.pk, by=curator).request_id != first.request_id


def test_a_run_declared_lost_runs_when_its_task_is_redelivered(seed: Candidate, fakeapi: FakeApi, settings) -> None:
    route_seed(fakeapi)
    settings.EVIDENCE_REFRESH_RUN_LIMIT = 660
    request_id = uuid.uuid4()
    RefreshRun.objects.create(
        request_id=request_id, candidate=seed, source="clinicaltrials", status=Status.RUNNING, started_at=_ago(700)
    )
    refresh.refresh_runs_sweep()

    refresh.candidate_refresh(candidate_id=seed.pk, request_id=request_id)

    run = runs(request_id)["clinicaltrials"]
    assert (run.status, run.error, run.new_count) == (Status.SUCCESS, "", 1)


def test_a_run_limit_within_the_task_time_limit_stops_start_up() -> None:
    env = {**os.environ, "CELERY_TASK_TIME_LIMIT": "600", "EVIDENCE_REFRESH_RUN_LIMIT": "600"}
    started = subprocess.run(
        [sys.executable, "-c", "import portal.settings"], env=env, capture_output=True, text=True, check=False
    )

    assert started.returncode != 0 and "EVIDENCE_REFRESH_RUN_LIMIT=600 must exceed" in started.stderr
