"""Refreshing the seed candidate against the fake APIs: suggestions, provenance, query log, diffs, failures."""

from __future__ import annotations

import json
import uuid

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from dossiers.models import (
    Candidate,
    CandidatePublication,
    CandidateTrial,
    ClinicalTrial,
    CurationStatus,
    DataGap,
    Drug,
    EvidenceChange,
    Publication,
    RefreshRun,
    SafetyStatement,
)
from dossiers.services import refresh
from portal.roles import Role
from reviews.models import AuditEvent, Notification, ReviewRound, SignOff, Watch
from reviews.signatures import candidate_content, content_hash
from tests.factories import make_market, make_user
from tests.fakeapi import CTGOV, EUTILS, OPENFDA_LABEL, FakeApi, handmade, json_reply, raw_reply
from tests.refresh.seedfake import NEW_PMIDS, PAGE2_TOKEN, SEED_PMIDS, route_seed

pytestmark = pytest.mark.django_db

Status = RefreshRun.Status


def refresh_all(candidate: Candidate) -> uuid.UUID:
    """One request: the candidate's and its drug's runs, as the tasks would run them."""
    request_id = uuid.uuid4()
    refresh.drug_refresh(drug_id=candidate.dossier.drug_id, request_id=request_id)
    refresh.candidate_refresh(candidate_id=candidate.pk, request_id=request_id)
    return request_id


def runs(request_id: uuid.UUID) -> dict[str, RefreshRun]:
    return {r.source: r for r in RefreshRun.objects.filter(request_id=request_id)}


def evidence_snapshot(candidate: Candidate) -> list[tuple]:
    trials = CandidateTrial.objects.filter(candidate=candidate).order_by("trial__nct_id")
    pubs = CandidatePublication.objects.filter(candidate=candidate).order_by("publication__pmid")
    return [
        *[(t.trial.nct_id, t.curation_status, t.relevance, t.key_findings) for t in trials],
        *[(p.publication.pmid, p.curation_status, p.tier, p.key_findings) for p in pubs],
    ]


def test_seed_refresh_adds_suggestions_with_provenance_and_fills_the_label(seed: Candidate, fakeapi: FakeApi) -> None:
    route_seed(fakeapi)
    included_before = evidence_snapshot(seed)

    request_id = refresh_all(seed)

    log = runs(request_id)
    assert {s: r.status for s, r in log.items()} == {
        "clinicaltrials": Status.SUCCESS,
        "pubmed": Status.SUCCESS,
        "openfda": Status.SUCCESS,
        "rxnav": Status.SUCCESS,
    }
    trials = log["clinicaltrials"]
    assert (trials.total_hits, trials.new_count, trials.changed_count, trials.unchanged_count) == (3, 1, 0, 2)
    assert "query.cond=Myeloid+Leukemia" in trials.query and "query.intr=Lenalidomide" in trials.query
    assert trials.params["query.cond"] == "Myeloid Leukemia"
    assert trials.started_at is not None and trials.finished_at is not None
    assert trials.started_at <= trials.finished_at
    # both pages were read
    assert [s.params.get("pageToken") for s in fakeapi.seen(CTGOV)] == [None, PAGE2_TOKEN]

    new_trial = CandidateTrial.objects.get(candidate=seed, trial__nct_id="NCT09999901")
    assert new_trial.curation_status == CurationStatus.SUGGESTED
    assert (new_trial.origin, new_trial.origin_name) == ("source", "ClinicalTrials.gov")
    assert "query.cond=Myeloid+Leukemia" in new_trial.origin_query and new_trial.retrieved_at is not None
    assert new_trial.trial.status == "Terminated" and new_trial.trial.phase == "Phase 1/2"
    assert new_trial.trial.last_update == "2016-01-12"
    # the seed's own trial (imported without title or last update) gets them filled in, nothing else
    seed_trial = ClinicalTrial.objects.get(nct_id="NCT01358734")
    assert seed_trial.last_update == "2021-02-18" and seed_trial.title.startswith("Lenalidomide, Azacitidine")
    assert (seed_trial.origin, seed_trial.status, seed_trial.enrollment) == ("import", "Completed", 88)

    papers = log["pubmed"]
    assert (papers.total_hits, papers.read_count, papers.new_count, papers.unchanged_count) == (7, 7, 2, 5)
    for pmid in NEW_PMIDS:
        link = CandidatePublication.objects.get(candidate=seed, publication__pmid=pmid)
        assert link.curation_status == CurationStatus.SUGGESTED and link.origin_name == "PubMed"
        assert "esearch.fcgi" in link.origin_query and link.publication.abstract == f"Abstract of {pmid}."
    assert Publication.objects.get(pmid="40000001").study_type == "Randomized Controlled Trial"
    efetched = [s.params["id"] for s in fakeapi.seen(f"{EUTILS}/efetch.fcgi")]
    assert efetched == [",".join(SEED_PMIDS + NEW_PMIDS)]  # the seed's papers had no abstract yet

    boxed = SafetyStatement.objects.get(dossier=seed.dossier, kind="boxed_warning", origin="source")
    assert boxed.origin_name == "openFDA" and boxed.source_id == "4c1f6a8e-2d3b-4e5f-9a7b-1c2d3e4f5a6b"
    assert "EMBRYO-FETAL TOXICITY" in boxed.text.upper()
    assert SafetyStatement.objects.filter(dossier=seed.dossier, origin="import").count() == 3  # kept
    interactions = SafetyStatement.objects.get(dossier=seed.dossier, kind="interaction", origin="source")
    assert interactions.origin_name == "openFDA" and interactions.text.strip()
    assert DataGap.objects.get(dossier=seed.dossier, code="DG001").status == DataGap.Status.RESOLVED
    assert DataGap.objects.get(dossier=seed.dossier, code="DG002").status == DataGap.Status.OPEN
    assert Drug.objects.get(pk=seed.dossier.drug_id).rxcui == "342369"

    # curated evidence untouched; the level is computed from it alone, with reasons
    assert [row for row in evidence_snapshot(seed) if row[1] != CurationStatus.SUGGESTED] == included_before
    seed.refresh_from_db()
    assert seed.computed_evidence_level == "L1" and seed.evidence_level == "L2"
    assert seed.evidence_level_reasons == ["PMID 30271212: Meta-analysis → L1", "PMID 31221030: Meta-analysis → L1"]
    assert ClinicalTrial.objects.get(nct_id="NCT01358734").allocation == "RANDOMIZED"  # the registry's design
    assert seed.evidence_refreshed_at is not None
    kinds = sorted(EvidenceChange.objects.filter(candidate=seed).values_list("kind", "significant"))
    assert kinds == sorted(
        [
            ("label_retrieved", False),
            ("new_publication", False),
            ("new_publication", False),
            ("trial_stopped_for_safety", True),
        ]
    )


def test_second_refresh_reports_everything_unchanged(seed: Candidate, fakeapi: FakeApi) -> None:
    route_seed(fakeapi)
    refresh_all(seed)
    rows_before = (ClinicalTrial.objects.count(), Publication.objects.count(), SafetyStatement.objects.count())
    changes_before = EvidenceChange.objects.count()

    log = runs(refresh_all(seed))

    assert {s: (r.status, r.new_count, r.changed_count) for s, r in log.items()} == {
        "clinicaltrials": (Status.SUCCESS, 0, 0),
        "pubmed": (Status.SUCCESS, 0, 0),
        "openfda": (Status.SUCCESS, 0, 0),
        "rxnav": (Status.SUCCESS, 0, 0),
    }
    assert [log[s].unchanged_count for s in ("clinicaltrials", "pubmed", "openfda", "rxnav")] == [3, 7, 4, 1]
    assert (ClinicalTrial.objects.count(), Publication.objects.count(), SafetyStatement.objects.count()) == rows_before
    assert EvidenceChange.objects.count() == changes_before
    assert len(fakeapi.seen(f"{EUTILS}/efetch.fcgi")) == 1  # abstracts are not fetched again


def test_a_changed_trial_and_label_are_diffs_flagged_on_every_linked_candidate(
    seed: Candidate, fakeapi: FakeApi
) -> None:
    route_seed(fakeapi)
    refresh_all(seed)
    page1 = json.loads(handmade("ctgov-v2-studies-lenalidomide-aml-page1.handmade.json").read_text())
    status = page1["studies"][0]["protocolSection"]["statusModule"]
    status["overallStatus"] = "TERMINATED"
    status["whyStopped"] = "Stopped for unexpected toxicity"
    page1["studies"][0]["protocolSection"]["designModule"]["enrollmentInfo"]["count"] = 61
    fakeapi.route(CTGOV, json_reply(page1))
    label = json.loads(handmade("openfda-label-lenalidomide.handmade.json").read_text())
    label["results"][0]["boxed_warning"] = ["WARNING: NEW CARDIAC RISK"]
    fakeapi.route(OPENFDA_LABEL, json_reply(label))
    seed_title = ClinicalTrial.objects.get(nct_id="NCT01358734").title

    log = runs(refresh_all(seed))

    assert (log["clinicaltrials"].new_count, log["clinicaltrials"].changed_count) == (0, 1)
    assert (log["openfda"].changed_count, log["openfda"].unchanged_count) == (1, 3)
    trial = ClinicalTrial.objects.get(nct_id="NCT01358734")
    assert (trial.status, trial.enrollment, trial.title) == ("Terminated", 61, seed_title)
    link = CandidateTrial.objects.get(candidate=seed, trial=trial)
    assert link.curation_status == CurationStatus.INCLUDED and set(link.changed_fields) >= {"status", "enrollment"}
    new = EvidenceChange.objects.filter(refresh_run__request_id=log["clinicaltrials"].request_id)
    assert sorted(new.values_list("kind", "significant")) == [
        ("enrollment_changed", False),
        ("new_boxed_warning", True),
        ("trial_stopped_for_safety", True),
    ]
    assert new.get(kind="enrollment_changed").detail["fields"]["enrollment"] == [88, 61]


def test_a_malformed_answer_fails_that_run_and_loses_nothing(seed: Candidate, fakeapi: FakeApi) -> None:
    route_seed(fakeapi)
    refresh_all(seed)
    before = evidence_snapshot(seed)
    fakeapi.route(CTGOV, raw_reply('{"studies": [{"protocolSection": '))  # cut off mid-way
    fakeapi.route(f"{EUTILS}/esummary.fcgi", json_reply({"result": {"uids": ["40000001"]}}))  # record missing

    log = runs(refresh_all(seed))

    assert log["clinicaltrials"].status == Status.ERROR
    assert "not valid JSON" in log["clinicaltrials"].error and log["clinicaltrials"].query
    assert log["pubmed"].status == Status.ERROR and "missing '40000001'" in log["pubmed"].error
    assert log["openfda"].status == Status.SUCCESS
    assert evidence_snapshot(seed) == before


def test_a_source_that_is_down_is_an_error_not_an_empty_result(seed: Candidate, fakeapi: FakeApi, settings) -> None:
    route_seed(fakeapi)
    settings.SOURCES_MAX_RETRIES = 1
    fakeapi.route(CTGOV, raw_reply("oops", status=500, content_type="text/plain"))
    fakeapi.route(f"{EUTILS}/esearch.fcgi", raw_reply(
        '<?xml version="1.0" ?><eSearchResult><Count>0</Count><RetMax>0</RetMax><IdList/></eSearchResult>',
        content_type="text/xml",
    ))  # fmt: skip

    log = runs(refresh_all(seed))

    assert log["clinicaltrials"].status == Status.ERROR and "HTTP 500" in log["clinicaltrials"].error
    assert log["pubmed"].status == Status.EMPTY and log["pubmed"].total_hits == 0
    seed.refresh_from_db()
    assert seed.evidence_refreshed_at is None  # a failed source means the candidate is not up to date


def test_the_same_request_twice_applies_once(seed: Candidate, fakeapi: FakeApi) -> None:
    route_seed(fakeapi)
    request_id = refresh_all(seed)
    requests_seen = len(fakeapi.seen())
    changes = EvidenceChange.objects.count()

    assert refresh.candidate_refresh(candidate_id=seed.pk, request_id=request_id) == []
    assert refresh.drug_refresh(drug_id=seed.dossier.drug_id, request_id=request_id) == []
    assert len(fakeapi.seen()) == requests_seen and EvidenceChange.objects.count() == changes
    assert RefreshRun.objects.filter(request_id=request_id).count() == 4


def test_a_run_left_running_by_a_dead_worker_is_finished_by_the_redelivery(seed: Candidate, fakeapi: FakeApi) -> None:
    route_seed(fakeapi)
    request_id = uuid.uuid4()
    RefreshRun.objects.create(request_id=request_id, candidate=seed, source="clinicaltrials", status=Status.RUNNING)

    refresh.candidate_refresh(candidate_id=seed.pk, request_id=request_id)

    run = RefreshRun.objects.get(request_id=request_id, source="clinicaltrials")
    assert (run.status, run.new_count) == (Status.SUCCESS, 1)


def test_rate_limit_wait_too_long_is_not_queried(seed: Candidate, fakeapi: FakeApi, settings) -> None:
    route_seed(fakeapi)
    settings.REDIS_URL = ""
    settings.CLINICALTRIALS_RATE_LIMIT = (1, 3600.0)
    settings.SOURCES_RATE_LIMIT_MAX_WAIT = 0.5
    from dossiers.sources import ratelimit

    ratelimit.reset("clinicaltrials")
    ratelimit.acquire("clinicaltrials")  # someone else took the hour's only slot

    log = runs(refresh_all(seed))

    assert log["clinicaltrials"].status == Status.NOT_QUERIED and "rate limit" in log["clinicaltrials"].error
    assert fakeapi.seen(CTGOV) == []


def _sign_off(candidate: Candidate, approver) -> SignOff:
    """A valid signature of the candidate's content as it is now."""
    round_ = ReviewRound.objects.create(candidate=candidate, number=1, opened_by=approver)
    Candidate.objects.filter(pk=candidate.pk).update(status=Candidate.Status.SIGNED_OFF)
    return SignOff.objects.create(
        candidate=candidate, round=round_, signer=approver, signer_name="A. Prover", signed_at=timezone.now(),
        signed_timezone="UTC", meaning="Approved: Go", decision="go", content=candidate_content(candidate),
        content_hash=content_hash(candidate),
    )  # fmt: skip


def test_significant_changes_on_a_signed_off_candidate_notify_approver_and_watchers(
    seed: Candidate, fakeapi: FakeApi, django_capture_on_commit_callbacks
) -> None:
    route_seed(fakeapi)
    india = make_market("IN")
    approver = make_user("approver", Role.APPROVER, markets=[india])
    watcher = make_user("watcher", Role.VIEWER, markets=[india])
    outsider = make_user("outsider", Role.VIEWER, markets=[make_market("CA", "Canada")])
    signoff = _sign_off(seed, approver)
    Watch.objects.create(candidate=seed, user=watcher)
    Watch.objects.create(candidate=seed, user=outsider)

    with django_capture_on_commit_callbacks(execute=True):
        request_id = refresh_all(seed)

    # The label resolved the seed's "warnings not retrieved" gap: signed content, so the signature is void
    # and the candidate awaits a new sign-off; the alert goes out all the same.
    signoff.refresh_from_db()
    assert not signoff.valid and "data_gaps" in signoff.invalidated_reason
    assert Candidate.objects.get(pk=seed.pk).status == Candidate.Status.DECISION_PENDING
    event = AuditEvent.objects.get(candidate=seed, action="evidence.changed")
    assert "Trial stopped for safety" in event.reason
    notified = Notification.objects.filter(event=event, reason="evidence_changed")
    assert sorted(n.recipient.username for n in notified) == ["approver", "watcher"]
    assert not EvidenceChange.objects.filter(significant=True, notified_at__isnull=True).exists()
    # the alert job is idempotent: a second delivery writes nothing
    from reviews.evidence_alerts import evidence_changes_notify

    run = RefreshRun.objects.get(request_id=request_id, source="clinicaltrials")
    assert evidence_changes_notify(run_id=run.pk) == []
    assert AuditEvent.objects.filter(action="evidence.changed").count() == 1


def test_changes_on_a_candidate_not_signed_off_notify_nobody(
    seed: Candidate, fakeapi: FakeApi, django_capture_on_commit_callbacks
) -> None:
    route_seed(fakeapi)
    Watch.objects.create(candidate=seed, user=make_user("watcher", Role.VIEWER, markets=[make_market("IN")]))

    with django_capture_on_commit_callbacks(execute=True):
        refresh_all(seed)

    assert not AuditEvent.objects.filter(action="evidence.changed").exists()
    assert not Notification.objects.exists()


def test_curating_a_suggestion_includes_it_with_a_grade_and_recomputes_the_level(
    seed: Candidate, fakeapi: FakeApi
) -> None:
    route_seed(fakeapi, pmids=["40000002"])
    refresh_all(seed)
    india = make_market("IN")
    curator = make_user("curator", Role.CURATOR, markets=[india])
    CandidateTrial.objects.filter(candidate=seed).update(curation_status=CurationStatus.EXCLUDED)
    CandidatePublication.objects.filter(candidate=seed).update(curation_status=CurationStatus.EXCLUDED)
    refresh.evidence_level_recompute(candidate=seed)
    assert seed.computed_evidence_level == "L5"
    link = CandidatePublication.objects.get(candidate=seed, publication__pmid="40000002")

    refresh.evidence_curate(kind="publication", link_id=link.pk, by=curator, decision="included", grade="3")

    link.refresh_from_db()
    seed.refresh_from_db()
    assert (link.curation_status, link.tier) == ("included", 3)
    assert seed.computed_evidence_level == "L4"
    assert seed.evidence_level_reasons == ["PMID 40000002: Case Reports → L4"]


def test_curation_is_for_curators_of_the_market_and_checks_its_input(seed: Candidate, fakeapi: FakeApi) -> None:
    route_seed(fakeapi)
    refresh_all(seed)
    link = CandidateTrial.objects.get(candidate=seed, trial__nct_id="NCT09999901")
    viewer = make_user("viewer", Role.VIEWER, markets=[make_market("IN")])
    other = make_user("other", Role.CURATOR, markets=[make_market("CA", "Canada")])
    curator = make_user("curator", Role.CURATOR, markets=[make_market("IN")])

    for user in (viewer, other):
        with pytest.raises(PermissionDenied):
            refresh.evidence_curate(kind="trial", link_id=link.pk, by=user, decision="included", grade="A")
    with pytest.raises(ValidationError, match="grade: 'Z' is not a relevance grade"):
        refresh.evidence_curate(kind="trial", link_id=link.pk, by=curator, decision="included", grade="Z")
    with pytest.raises(ValidationError, match="decision: 'maybe'"):
        refresh.evidence_curate(kind="trial", link_id=link.pk, by=curator, decision="maybe")
    link.refresh_from_db()
    assert (link.curation_status, link.relevance) == ("suggested", "")
