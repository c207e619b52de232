"""Real Celery workers on the Redis broker: a whole refresh, a SIGKILL in the middle of 100, two workers' rate."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

import pytest
from django.db.models import Count

from dossiers import tasks
from dossiers.models import (
    Candidate,
    CandidatePublication,
    CandidateTrial,
    ClinicalTrial,
    CurationStatus,
    DataGap,
    EvidenceChange,
    Publication,
    RefreshRun,
)
from dossiers.services import refresh
from dossiers.services.dossier_import import dossier_import
from portal.roles import Role
from reviews.models import Notification
from tests.factories import make_candidate, make_market, make_user
from tests.fakeapi import CTGOV, EUTILS, FakeApi
from tests.refresh.conftest import worker_env
from tests.refresh.seedfake import route_seed
from tests.refresh.test_refresh_service import _sign_off
from tests.sources.test_ratelimit import max_in_any_window

pytestmark = [pytest.mark.postgres, pytest.mark.services]


def wait_until(
    done: Callable[[], bool], *, timeout: float, what: str, tick: Callable[[], object] | None = None
) -> None:
    """Poll `done`; `tick` (the beat's dispatcher, say) is called on each round."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            return
        if tick is not None:
            tick()
        time.sleep(0.3)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def beat() -> None:
    """What the beat process does every EVIDENCE_REFRESH_DISPATCH_INTERVAL seconds."""
    tasks.refresh_dispatch()


def unfinished() -> int:
    return RefreshRun.objects.filter(status__in=[RefreshRun.Status.PENDING, RefreshRun.Status.RUNNING]).count()


@pytest.fixture
def seed(seed_path, transactional_db) -> Candidate:
    dossier_import(path_or_file=seed_path, file_name=seed_path.name, market_code="IN", by=None)
    return Candidate.objects.select_related("dossier").get(disease__iexact="myeloid leukemia")


def test_a_worker_runs_a_whole_refresh_from_the_button(seed: Candidate, fakeapi: FakeApi, start_workers) -> None:
    route_seed(fakeapi)
    start_workers(worker_env(fakeapi.url))
    india = make_market("IN")
    curator = make_user("curator", Role.CURATOR, markets=[india])
    approver = make_user("approver", Role.APPROVER, markets=[india])
    # The label would resolve the seed's open "warnings not retrieved" gap (signed content) and void the
    # sign-off; that race is test_refresh_alerts.py's. Resolved beforehand here, so that the signature stays
    # valid and this test checks the alert path through a worker alone.
    DataGap.objects.filter(dossier=seed.dossier, code="DG001").update(status=DataGap.Status.RESOLVED)
    _sign_off(seed, approver)  # so that the trial stopped for safety is sent to reviews by task name

    queued = refresh.candidate_refresh_request(candidate_id=seed.pk, by=curator)

    wait_until(lambda: unfinished() == 0, timeout=90, what="the refresh runs")
    wait_until(
        lambda: Notification.objects.filter(recipient=approver, reason="evidence_changed").exists(),
        timeout=60,
        what="the evidence alert from reviews.evidence_changes_notify",
    )
    runs = {r.source: r for r in RefreshRun.objects.filter(request_id=queued.request_id)}
    assert {s: r.status for s, r in runs.items()} == dict.fromkeys(
        ["clinicaltrials", "pubmed", "openfda", "rxnav"], "success"
    )
    assert runs["clinicaltrials"].requested_by == curator
    assert CandidateTrial.objects.get(candidate=seed, trial__nct_id="NCT09999901").curation_status == "suggested"
    assert seed.dossier.safety_statements.filter(origin="source", kind="boxed_warning").count() == 1


def test_sigkill_in_the_middle_of_100_candidates_ends_with_each_refreshed_once(
    seed: Candidate, fakeapi: FakeApi, start_workers, settings
) -> None:
    route_seed(fakeapi, delay=0.05)  # every answer takes a little while, so that the kill lands mid-batch
    others = [make_candidate(seed.dossier, disease=f"Myeloid disorder {n:02d}") for n in range(99)]
    # a curator's decisions that must survive: an inclusion with a grade on one candidate, an exclusion on another
    trial = ClinicalTrial.objects.get(nct_id="NCT01358734")
    CandidateTrial.objects.create(
        candidate=others[0], trial=trial, curation_status=CurationStatus.INCLUDED, relevance="A", key_findings="kept"
    )
    paper = Publication.objects.get(pmid="30271212")
    CandidatePublication.objects.create(
        candidate=others[1], publication=paper, curation_status=CurationStatus.EXCLUDED, key_findings="off-topic"
    )
    seed_curation = _curated(seed)
    worker = start_workers(worker_env(fakeapi.url), concurrency=2)[0]

    request = refresh.nightly_refresh_request(day="2026-11-25")
    assert len(request.candidate_ids) == 100
    total = RefreshRun.objects.filter(request_id=request.request_id).count()
    # the test is the beat: it calls the dispatcher while it waits
    wait_until(lambda: total - unfinished() >= total // 3, timeout=120, what="a third of the runs", tick=beat)
    worker.kill()
    assert 0 < unfinished() < total  # really killed in the middle
    worker.start()
    wait_until(lambda: unfinished() == 0, timeout=240, what="every run after the restart", tick=beat)

    runs = RefreshRun.objects.filter(request_id=request.request_id)
    assert runs.count() == 202  # 100 candidates × 2 sources + 1 drug × 2 sources: one run each, none doubled
    assert set(runs.values_list("status", flat=True)) == {"success"}
    per_candidate = Counter(runs.filter(candidate__isnull=False).values_list("candidate_id", flat=True))
    assert set(per_candidate.values()) == {2} and len(per_candidate) == 100
    # no duplicate evidence rows, and each candidate's news recorded once
    assert ClinicalTrial.objects.filter(nct_id="NCT09999901").count() == 1
    assert not CandidateTrial.objects.values("candidate", "trial").annotate(n=Count("id")).filter(n__gt=1).exists()
    new_trial_changes = Counter(
        EvidenceChange.objects.filter(kind="trial_stopped_for_safety").values_list("candidate_id", flat=True)
    )
    assert len(new_trial_changes) == 100 and set(new_trial_changes.values()) == {1}
    assert CandidateTrial.objects.filter(candidate__in=others).count() == 99 * 3 + 0  # 3 trials each
    assert CandidatePublication.objects.filter(candidate__in=others).count() == 99 * 7
    # no lost curation
    kept = CandidateTrial.objects.get(candidate=others[0], trial=trial)
    assert (kept.curation_status, kept.relevance, kept.key_findings) == ("included", "A", "kept")
    excluded = CandidatePublication.objects.get(candidate=others[1], publication=paper)
    assert (excluded.curation_status, excluded.key_findings) == ("excluded", "off-topic")
    assert _curated(seed) == seed_curation


def test_two_workers_share_the_rate_limit(seed: Candidate, fakeapi: FakeApi, start_workers, settings) -> None:
    route_seed(fakeapi)
    for n in range(29):
        make_candidate(seed.dossier, disease=f"Myeloid disorder {n:02d}")
    limit = 8
    start_workers(worker_env(fakeapi.url, rate=f"{limit}/s"), count=2, concurrency=2)

    refresh.nightly_refresh_request(day="2026-11-26")
    wait_until(lambda: unfinished() == 0, timeout=180, what="the refresh of 30 candidates", tick=beat)

    assert set(RefreshRun.objects.values_list("status", flat=True)) == {"success"}
    for path in (CTGOV, f"{EUTILS}/esearch.fcgi"):
        arrivals = [r.mono for r in fakeapi.seen(path)]
        assert len(arrivals) >= 30
        assert max_in_any_window(arrivals, 1.0) <= limit, path
    pubmed = [r.mono for r in fakeapi.seen() if r.path.startswith(EUTILS)]
    assert max_in_any_window(pubmed, 1.0) <= limit  # esearch, esummary and efetch share PubMed's limit


def _curated(candidate: Candidate) -> list[tuple]:
    trials = CandidateTrial.objects.filter(candidate=candidate).exclude(curation_status="suggested")
    papers = CandidatePublication.objects.filter(candidate=candidate).exclude(curation_status="suggested")
    return sorted(
        [(t.trial_id, t.curation_status, t.relevance, t.key_findings) for t in trials]
        + [(p.publication_id, p.curation_status, str(p.tier), p.key_findings) for p in papers]
    )
