"""A user of another market team gets 404 on every object of this market, and never sees it in lists."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.utils import timezone

from dossiers.models import Candidate, CandidatePublication, CandidateTrial, Prediction
from reviews import services
from reviews.models import AuditEvent
from tests.api.conftest import token_client
from tests.factories import PASSWORD, make_publication, make_trial
from tests.reviews.conftest import Personas, reload


@dataclass
class IndiaObjects:
    candidate: Candidate
    ids: dict[str, int]


@pytest.fixture
def india(people: Personas, candidate: Candidate) -> IndiaObjects:
    dossier = candidate.dossier
    prediction = Prediction.objects.create(
        market=people.market, drug=dossier.drug, disease=candidate.disease, score=0.9, imported_at=timezone.now()
    )
    trial, publication = make_trial(), make_publication()
    CandidateTrial.objects.create(candidate=candidate, trial=trial)
    CandidatePublication.objects.create(candidate=candidate, publication=publication)
    services.candidate_triage(candidate_id=candidate.pk, by=people.curator)
    event = AuditEvent.objects.filter(candidate=candidate).latest("id")
    ids = {
        "markets": people.market.pk,
        "drugs": dossier.drug_id,
        "dossiers": dossier.pk,
        "candidates": candidate.pk,
        "predictions": prediction.pk,
        "trials": trial.pk,
        "publications": publication.pk,
        "conditions": candidate.conditions.get().pk,
        "audit-events": event.pk,
    }
    return IndiaObjects(candidate=candidate, ids=ids)


CANDIDATE_READS = ["reviews", "assignments", "signoffs", "conditions", "comments", "watch", "actions"]
CANDIDATE_WRITES = [
    ("post", "triage", {}),
    ("post", "deprioritize", {"reason_code": "duplicate"}),
    ("post", "revive", {}),
    ("post", "start-curation", {}),
    ("post", "assign", {"reviewers": ["reviewer1"]}),
    ("post", "send-to-review", {}),
    ("post", "reopen", {"reason": "x"}),
    ("post", "reviews", {"recommendation": "hold", "evidence_level": "L3", "decision_stage": "S1", "rationale": "x"}),
    ("post", "resolve-conflict", {"decision": "hold", "level": "L3", "stage": "S1", "note": "x"}),
    ("post", "sign-off", {"password": PASSWORD, "decision": "hold"}),
    ("post", "comments", {"body": "x"}),
    ("put", "watch", None),
    ("delete", "watch", None),
]


@pytest.mark.parametrize(
    "resource",
    ["markets", "drugs", "dossiers", "candidates", "predictions", "trials", "publications", "audit-events"],
)
def test_outsider_gets_404_on_details_and_nothing_in_lists(
    people: Personas, india: IndiaObjects, resource: str
) -> None:
    outsider, member = token_client(people.outsider), token_client(people.viewer)
    path = f"/api/v1/{resource}/{india.ids[resource]}/"
    assert member.get(path).status_code == 200
    response = outsider.get(path)
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found", "errors": {}}
    listed = outsider.get(f"/api/v1/{resource}/").json()["results"]
    assert india.ids[resource] not in [row["id"] for row in listed]


def test_outsider_gets_404_on_conditions(people: Personas, india: IndiaObjects) -> None:
    outsider = token_client(people.outsider)
    condition = india.ids["conditions"]
    assert token_client(people.viewer).get(f"/api/v1/conditions/{condition}/").status_code == 200
    assert outsider.get(f"/api/v1/conditions/{condition}/").status_code == 404
    assert outsider.post(f"/api/v1/conditions/{condition}/mark-met/", {"note": "x"}).status_code == 404
    assert outsider.post(f"/api/v1/conditions/{condition}/waive/", {"justification": "x"}).status_code == 404


@pytest.mark.parametrize("action", CANDIDATE_READS)
def test_outsider_gets_404_on_candidate_reads(people: Personas, india: IndiaObjects, action: str) -> None:
    path = f"/api/v1/candidates/{india.candidate.pk}/{action}/"
    assert token_client(people.viewer).get(path).status_code == 200
    assert token_client(people.outsider).get(path).status_code == 404


@pytest.mark.parametrize(("method", "action", "body"), CANDIDATE_WRITES)
def test_outsider_gets_404_on_candidate_writes(
    people: Personas, india: IndiaObjects, method: str, action: str, body: dict[str, str] | None
) -> None:
    before = reload(india.candidate)
    path = f"/api/v1/candidates/{india.candidate.pk}/{action}/"
    response = getattr(token_client(people.outsider), method)(path, body, format="json")
    assert response.status_code == 404
    after = reload(india.candidate)
    assert (after.status, after.version) == (before.status, before.version)


def test_outsider_gets_404_on_export_and_audit_filter(people: Personas, india: IndiaObjects) -> None:
    outsider = token_client(people.outsider)
    dossier = india.ids["dossiers"]
    for fmt in ("md", "html", "json"):
        assert outsider.get(f"/api/v1/dossiers/{dossier}/export.{fmt}").status_code == 404
    assert outsider.get("/api/v1/audit-events/", {"candidate": india.candidate.pk}).json()["results"] == []
    evidence = outsider.get("/api/v1/trials/", {"candidate": india.candidate.pk}).json()["results"]
    assert evidence == []
