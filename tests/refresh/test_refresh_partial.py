"""A refresh that could not read every record the source reported says so ("partial"), never a silent success."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from dossiers.models import Candidate, CandidatePublication, RefreshRun
from dossiers.sources import pubmed
from portal.roles import Role
from tests.factories import make_market, make_user
from tests.fakeapi import CTGOV, EUTILS, FakeApi, handmade, json_reply, raw_reply
from tests.refresh.seedfake import (
    SEED_PMIDS,
    efetch_xml,
    esearch_xml,
    esummary_json,
    paged_efetch,
    paged_esearch,
    paged_esummary,
    route_seed,
)
from tests.refresh.test_refresh_service import refresh_all, runs

pytestmark = pytest.mark.django_db

Status = RefreshRun.Status
ESEARCH = f"{EUTILS}/esearch.fcgi"
MANY = [str(41000000 + n) for n in range(412)]


def _route_many(fakeapi: FakeApi, *, count: int | None = None) -> None:
    fakeapi.route(ESEARCH, paged_esearch(MANY, count=count))
    fakeapi.route(f"{EUTILS}/esummary.fcgi", paged_esummary)
    fakeapi.route(f"{EUTILS}/efetch.fcgi", paged_efetch)


def test_every_pubmed_hit_is_read_page_by_page(
    seed: Candidate, fakeapi: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    route_seed(fakeapi)
    _route_many(fakeapi)
    monkeypatch.setattr(pubmed, "ESEARCH_PAGE", 200)

    papers = runs(refresh_all(seed))["pubmed"]

    assert (papers.status, papers.total_hits, papers.read_count, papers.new_count) == (Status.SUCCESS, 412, 412, 412)
    assert [(r.params["retstart"], r.params["retmax"]) for r in fakeapi.seen(ESEARCH)] == [
        ("0", "200"),
        ("200", "200"),
        ("400", "200"),
    ]
    assert CandidatePublication.objects.filter(candidate=seed, publication__pmid__in=MANY).count() == 412


def test_the_pubmed_cap_makes_the_run_partial_with_the_counts(seed: Candidate, fakeapi: FakeApi, settings) -> None:
    route_seed(fakeapi)
    _route_many(fakeapi)
    settings.PUBMED_MAX_RECORDS = 250

    papers = runs(refresh_all(seed))["pubmed"]

    assert (papers.status, papers.read_count, papers.new_count) == (Status.PARTIAL, 250, 250)
    assert papers.error == "partial: read 250 of 412 — PubMed found 412, the first 250 are read (PUBMED_MAX_RECORDS)"
    seed.refresh_from_db()
    assert seed.evidence_refreshed_at is not None  # what was read is applied


def test_pubmed_listing_fewer_ids_than_it_counted_is_partial(seed: Candidate, fakeapi: FakeApi) -> None:
    route_seed(fakeapi)
    pmids = SEED_PMIDS[:3]
    fakeapi.route(ESEARCH, raw_reply(esearch_xml(pmids, 412), content_type="text/xml"))  # ignores retstart
    fakeapi.route(f"{EUTILS}/esummary.fcgi", json_reply(esummary_json(pmids)))
    fakeapi.route(f"{EUTILS}/efetch.fcgi", raw_reply(efetch_xml(pmids), content_type="text/xml"))

    papers = runs(refresh_all(seed))["pubmed"]

    assert (papers.status, papers.read_count) == (Status.PARTIAL, 3)
    assert papers.error == "partial: read 3 of 412 — esearch listed 3 of the 412 PMIDs it counted"
    assert len(fakeapi.seen(ESEARCH)) == 2  # the second page brought nothing new: paging stops


def test_fewer_summaries_or_abstracts_than_asked_for_is_partial(seed: Candidate, fakeapi: FakeApi) -> None:
    route_seed(fakeapi, pmids=["40000001", "40000002"])
    summaries = esummary_json(["40000001"])
    summaries["result"]["uids"] = ["40000001", "40000002"]
    summaries["result"]["40000002"] = {"uid": "40000002", "error": "cannot get document summary"}
    fakeapi.route(f"{EUTILS}/esummary.fcgi", json_reply(summaries))
    fakeapi.route(f"{EUTILS}/efetch.fcgi", raw_reply(efetch_xml([]), content_type="text/xml"))

    papers = runs(refresh_all(seed))["pubmed"]

    assert (papers.status, papers.read_count, papers.new_count) == (Status.PARTIAL, 1, 1)
    assert papers.error == (
        "partial: read 1 of 2 — esummary returned 1 of 2 records (withdrawn or unknown PMIDs); "
        "efetch returned 0 of 1 records, so some abstracts are missing"
    )


def test_the_trial_page_cap_makes_the_run_partial(seed: Candidate, fakeapi: FakeApi, settings) -> None:
    route_seed(fakeapi)
    settings.CLINICALTRIALS_MAX_PAGES = 1

    trials = runs(refresh_all(seed))["clinicaltrials"]

    assert (trials.status, trials.total_hits, trials.read_count) == (Status.PARTIAL, 3, 2)
    assert trials.error == "partial: read 2 of 3 — paging stopped at the cap of 1 pages (CLINICALTRIALS_MAX_PAGES)"
    assert len(fakeapi.seen(CTGOV)) == 1


def test_fewer_trials_than_the_registry_counted_is_partial_and_shown_in_the_query_log(
    seed: Candidate, fakeapi: FakeApi
) -> None:
    route_seed(fakeapi)
    page = json.loads(handmade("ctgov-v2-studies-lenalidomide-aml-page1.handmade.json").read_text())
    page.pop("nextPageToken")
    page["totalCount"] = 9
    fakeapi.route(CTGOV, json_reply(page))

    trials = runs(refresh_all(seed))["clinicaltrials"]

    assert trials.status == Status.PARTIAL
    assert trials.error == "partial: read 2 of 9 — the registry listed 2 of the 9 studies it counted"
    client = Client()
    client.force_login(make_user("viewer", Role.VIEWER, markets=[make_market("IN")]))
    page_html = client.get(f"/candidates/{seed.pk}/").content.decode()
    log = page_html.split("Query log")[1]
    assert "Partial — not every record was read" in log and "read 2 of 9" in log
