"""The refresh button, query log, suggestions and "new" flags on the pages, and the refresh API: role matrix."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from django.contrib.auth.models import User
from django.test import Client

from dossiers.models import Candidate, CandidateTrial, CurationStatus, RefreshRun
from dossiers.services.dossier_import import dossier_import
from portal.roles import Role
from tests.factories import make_market, make_user
from tests.fakeapi import CTGOV, FakeApi, raw_reply
from tests.refresh.seedfake import route_seed

pytestmark = pytest.mark.django_db


@dataclass
class World:
    candidate: Candidate
    curator: User
    viewer: User
    outsider: User


@pytest.fixture
def world(seed_path, fakeapi: FakeApi) -> World:
    route_seed(fakeapi)
    dossier_import(path_or_file=seed_path, file_name=seed_path.name, market_code="IN", by=None)
    india, canada = make_market("IN"), make_market("CA", "Canada")
    return World(
        candidate=Candidate.objects.get(disease__iexact="myeloid leukemia"),
        curator=make_user("curator", Role.CURATOR, markets=[india]),
        viewer=make_user("viewer", Role.VIEWER, markets=[india]),
        outsider=make_user("outsider", Role.CURATOR, Role.VIEWER, markets=[canada]),
    )


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_curator_presses_refresh_and_sees_the_query_log_and_suggestions(
    world: World, django_capture_on_commit_callbacks
) -> None:
    client = client_for(world.curator)
    url = f"/candidates/{world.candidate.pk}/refresh/"

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url)

    assert response.status_code == 302 and response["Location"].endswith("#evidence-refresh")
    assert RefreshRun.objects.filter(status="success").count() == 4
    page = client.get(f"/candidates/{world.candidate.pk}/").content.decode()
    assert 'id="evidence-refresh"' in page and "Refresh evidence" in page
    assert "query.cond=Myeloid Leukemia" in page  # the query log shows the parameters
    suggestions = page.split("Suggestions to curate")[1].split("Query log")[0]
    assert "NCT09999901" in suggestions and "PMID 40000001" in suggestions and "PMID 40000002" in suggestions
    assert 'value="included"' in suggestions and "30271212" not in suggestions  # curated papers are not offered
    assert "Trial stopped for safety" in page  # new since last review
    assert "Computed evidence level" in page
    # the label's drug interactions are a safety statement of the dossier, beside its boxed warning
    dossier_page = client.get(f"/dossiers/{world.candidate.dossier_id}/").content.decode()
    assert "<h4>Drug interactions (label)</h4>" in dossier_page and "7.1 Digoxin" in dossier_page


def test_an_error_run_is_shown_as_an_error_never_as_no_evidence(
    world: World, fakeapi: FakeApi, settings, django_capture_on_commit_callbacks
) -> None:
    settings.SOURCES_MAX_RETRIES = 0
    fakeapi.route(CTGOV, raw_reply("down", status=503, content_type="text/plain"))
    client = client_for(world.curator)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/candidates/{world.candidate.pk}/refresh/")

    page = client.get(f"/candidates/{world.candidate.pk}/").content.decode()

    assert "Error — not searched successfully" in page and "HTTP 503" in page
    assert "No hits" not in page


def test_refresh_role_matrix(world: World) -> None:
    url = f"/candidates/{world.candidate.pk}/refresh/"
    assert client_for(world.viewer).post(url).status_code == 403
    assert client_for(world.outsider).post(url).status_code == 404
    assert client_for(world.curator).get(url).status_code == 405
    assert Client().post(url).status_code == 302  # to the login page
    assert not RefreshRun.objects.exists()
    viewer_page = client_for(world.viewer).get(f"/candidates/{world.candidate.pk}/").content.decode()
    assert "Refresh evidence</button>" not in viewer_page


def test_a_second_press_while_running_does_not_queue_twice(world: World) -> None:
    client = client_for(world.curator)
    client.post(f"/candidates/{world.candidate.pk}/refresh/")  # on_commit not run: stays pending
    client.post(f"/candidates/{world.candidate.pk}/refresh/")

    assert RefreshRun.objects.values("request_id").distinct().count() == 1
    page = client.get(f"/candidates/{world.candidate.pk}/").content.decode()
    assert "Refreshing: 0 of 4 queries done" in page


def test_new_flags_on_the_list_until_marked_reviewed(world: World, django_capture_on_commit_callbacks) -> None:
    client = client_for(world.curator)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/candidates/{world.candidate.pk}/refresh/")
    assert "4 new</span>" in client.get("/").content.decode()

    response = client.post(f"/candidates/{world.candidate.pk}/evidence-seen/")

    assert response.status_code == 302
    assert "new</span>" not in client.get("/").content.decode()
    assert "new</span>" in client_for(world.viewer).get("/").content.decode()  # per user


def test_curate_a_suggestion_from_the_page(world: World, django_capture_on_commit_callbacks) -> None:
    client = client_for(world.curator)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/candidates/{world.candidate.pk}/refresh/")
    link = CandidateTrial.objects.get(candidate=world.candidate, trial__nct_id="NCT09999901")
    url = f"/evidence/trial/{link.pk}/curate/"

    assert client_for(world.viewer).post(url, {"decision": "included", "grade": "B"}).status_code == 403
    assert client_for(world.outsider).post(url, {"decision": "included", "grade": "B"}).status_code == 404
    assert client.post(url, {"decision": "excluded", "grade": "B"}).status_code == 302

    link.refresh_from_db()
    assert (link.curation_status, link.relevance) == (CurationStatus.EXCLUDED, "B")
    assert client.post(f"/evidence/nope/{link.pk}/curate/", {"decision": "included"}).status_code == 404


def test_api_refresh_and_query_log(world: World, django_capture_on_commit_callbacks) -> None:
    url = f"/api/v1/candidates/{world.candidate.pk}/refresh/"
    assert client_for(world.viewer).post(url).status_code == 403
    assert client_for(world.outsider).post(url).json()["code"] == "not_found"

    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(world.curator).post(url)

    assert response.status_code == 202
    body = response.json()
    uuid.UUID(body["request_id"])
    assert sorted(r["source"] for r in body["runs"]) == ["clinicaltrials", "openfda", "pubmed", "rxnav"]
    log = client_for(world.viewer).get("/api/v1/refresh-runs/", {"candidate": world.candidate.pk}).json()
    assert [r["status"] for r in log["results"]] == ["success", "success"]
    assert log["results"][0]["query"].startswith("http")
    assert all(r["read_count"] == r["total_hits"] and r["enqueued_at"] for r in log["results"])
    everything = client_for(world.viewer).get("/api/v1/refresh-runs/").json()
    assert len(everything["results"]) == 4  # the drug's runs too
    assert client_for(world.outsider).get("/api/v1/refresh-runs/").json()["results"] == []
    assert client_for(world.viewer).post("/api/v1/refresh-runs/").status_code == 405


def test_a_nightly_refresh_waiting_for_the_dispatcher_says_it_is_queued(world: World) -> None:
    from dossiers.services import refresh

    refresh.nightly_refresh_request(day="2026-12-01")  # creates the runs; the dispatcher sends them later
    assert RefreshRun.objects.filter(candidate=world.candidate, enqueued_at__isnull=True).exists()

    page = client_for(world.curator).get(f"/candidates/{world.candidate.pk}/").content.decode()
    assert "Queued: 0 of 4 queries done; the rest wait their turn in the batch" in page
    assert "Refreshing:" not in page
