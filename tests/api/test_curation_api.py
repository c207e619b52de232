"""Curation through the API: editing candidates and dossiers (If-Match), curating suggestions, "mark as reviewed".

Each write goes through the page's service; the role matrix is the pages' (dossiers/permissions.py): a
curator of the market (or an admin) may curate, a viewer or reviewer gets 403, another market's team 404,
and a read-scope token 403.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from accounts.models import ApiToken
from dossiers.models import (
    Candidate,
    CandidatePublication,
    CandidateTrial,
    CandidateVisit,
    CurationStatus,
    Dossier,
    EvidenceChange,
)
from tests.api.conftest import token_client
from tests.factories import make_publication, make_trial
from tests.reviews.conftest import Personas, reload, to_in_review

PERSONAS = ["viewer", "curator", "reviewer", "approver", "admin", "outsider", "read_token"]
CURATORS = frozenset({"curator", "admin"})
EVERYONE_WHO_SEES = frozenset({"viewer", "curator", "reviewer", "approver", "admin"})


@pytest.fixture
def suggested(candidate: Candidate) -> tuple[CandidateTrial, CandidatePublication]:
    """A suggested trial and a suggested paper for the candidate, as a refresh leaves them."""
    trial = CandidateTrial.objects.create(
        candidate=candidate,
        trial=make_trial(phase="Phase 3", status="Completed"),
        curation_status=CurationStatus.SUGGESTED,
    )
    paper = CandidatePublication.objects.create(
        candidate=candidate,
        publication=make_publication(study_type="Case Reports"),
        curation_status=CurationStatus.SUGGESTED,
    )
    return trial, paper


def _client(persona: str, people: Personas, admin: User) -> APIClient:
    if persona == "read_token":
        return token_client(people.curator, scope=ApiToken.Scope.READ)
    user = {"reviewer": people.reviewer1, "admin": admin}.get(persona) or getattr(people, persona)
    return token_client(user)


@dataclass(frozen=True)
class Case:
    method: str
    url: Callable[[Candidate, tuple[CandidateTrial, CandidatePublication]], str]
    body: dict[str, Any] | None
    allowed: frozenset[str]
    changed: Callable[[Candidate, tuple[CandidateTrial, CandidatePublication]], bool]


def _state(candidate: Candidate) -> tuple[Any, ...]:
    fresh, dossier = reload(candidate), Dossier.objects.get(pk=candidate.dossier_id)
    return fresh.summary, fresh.version, dossier.safety_note, dossier.version


CASES: dict[str, Case] = {
    "edit-candidate": Case(
        "patch",
        lambda c, s: f"/api/v1/candidates/{c.pk}/",
        {"summary": "Edited."},
        CURATORS,
        lambda c, s: reload(c).summary == "Edited.",
    ),
    "edit-dossier": Case(
        "patch",
        lambda c, s: f"/api/v1/dossiers/{c.dossier_id}/",
        {"safety_note": "Edited."},
        CURATORS,
        lambda c, s: Dossier.objects.get(pk=c.dossier_id).safety_note == "Edited.",
    ),
    "curate-trial": Case(
        "post",
        lambda c, s: f"/api/v1/trial-links/{s[0].pk}/curate/",
        {"decision": "included", "grade": "A", "key_findings": "Met its primary endpoint."},
        CURATORS,
        lambda c, s: CandidateTrial.objects.get(pk=s[0].pk).curation_status == CurationStatus.INCLUDED,
    ),
    "curate-publication": Case(
        "post",
        lambda c, s: f"/api/v1/publication-links/{s[1].pk}/curate/",
        {"decision": "excluded", "grade": "3"},
        CURATORS,
        lambda c, s: CandidatePublication.objects.get(pk=s[1].pk).curation_status == CurationStatus.EXCLUDED,
    ),
    "evidence-seen": Case(
        "post",
        lambda c, s: f"/api/v1/candidates/{c.pk}/evidence-seen/",
        None,
        EVERYONE_WHO_SEES,  # the page lets anyone who sees the candidate mark it reviewed for themselves
        lambda c, s: CandidateVisit.objects.filter(candidate=c).exists(),
    ),
}


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("action", list(CASES))
def test_curation_role_matrix(
    people: Personas,
    candidate: Candidate,
    suggested: tuple[CandidateTrial, CandidatePublication],
    admin: User,
    action: str,
    persona: str,
) -> None:
    case = CASES[action]
    before = _state(candidate)
    response = getattr(_client(persona, people, admin), case.method)(
        case.url(candidate, suggested), case.body, format="json"
    )
    if persona in case.allowed:
        assert response.status_code == 200, response.json()
        assert case.changed(candidate, suggested)
        return
    expected = 404 if persona == "outsider" else 403
    assert response.status_code == expected, response.json()
    assert response.json()["code"] == ("not_found" if expected == 404 else "permission_denied")
    assert not case.changed(candidate, suggested) and _state(candidate) == before


# ---------------------------------------------------------------- editing under If-Match


def test_edit_candidate_honours_if_match(people: Personas, candidate: Candidate) -> None:
    curator = token_client(people.curator)
    url = f"/api/v1/candidates/{candidate.pk}/"
    etag = curator.get(url)["ETag"]
    assert etag == f'"{candidate.version}"'

    response = curator.patch(url, {"summary": "First", "reason": "checked"}, format="json", HTTP_IF_MATCH=etag)
    assert response.status_code == 200, response.json()
    assert response.json()["summary"] == "First" and response.json()["version"] == candidate.version + 1
    assert response["ETag"] == f'"{candidate.version + 1}"' != etag

    stale = curator.patch(url, {"summary": "Second"}, format="json", HTTP_IF_MATCH=etag)
    assert stale.status_code == 412 and stale.json()["code"] == "precondition_failed"
    assert reload(candidate).summary == "First"

    blind = curator.patch(url, {"summary": "Third"}, format="json")  # no If-Match: the current version
    assert blind.status_code == 200 and reload(candidate).summary == "Third"


def test_edit_dossier_honours_if_match(people: Personas, candidate: Candidate) -> None:
    curator = token_client(people.curator)
    url = f"/api/v1/dossiers/{candidate.dossier_id}/"
    etag = curator.get(url)["ETag"]
    response = curator.patch(url, {"market_status": "marketed", "registration_count": 4}, HTTP_IF_MATCH=etag)
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["market_status"], body["registration_count"]) == ("marketed", 4)
    assert "interactions" in body and response["ETag"] == f'"{body["version"]}"' != etag
    stale = curator.patch(url, {"registration_count": 5}, format="json", HTTP_IF_MATCH=etag)
    assert stale.status_code == 412
    assert Dossier.objects.get(pk=candidate.dossier_id).registration_count == 4


def test_edit_refuses_fields_it_would_ignore_or_an_empty_body(people: Personas, candidate: Candidate) -> None:
    curator = token_client(people.curator)
    url = f"/api/v1/candidates/{candidate.pk}/"
    response = curator.patch(url, {"status": "signed_off", "summary": "x"}, format="json")
    assert response.status_code == 400 and list(response.json()["errors"]) == ["status"]
    empty = curator.patch(url, {"reason": "nothing"}, format="json")
    assert empty.status_code == 400 and empty.json()["detail"] == "Send at least one field to change."
    bad = curator.patch(url, {"confidence": "certain"}, format="json")
    assert bad.status_code == 400 and list(bad.json()["errors"]) == ["confidence"]
    assert reload(candidate).version == candidate.version


def test_decision_fields_once_in_review_are_a_conflict(people: Personas, candidate: Candidate) -> None:
    to_in_review(candidate, people)
    version = reload(candidate).version
    curator = token_client(people.curator)
    response = curator.patch(f"/api/v1/candidates/{candidate.pk}/", {"evidence_level": "L1"}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "invalid_state"
    assert "reviewers and approver" in response.json()["detail"]
    assert reload(candidate).version == version
    ok = curator.patch(f"/api/v1/candidates/{candidate.pk}/", {"summary": "Still editable"}, format="json")
    assert ok.status_code == 200


def test_duplicate_disease_is_a_400(people: Personas, candidate: Candidate) -> None:
    other = Candidate.objects.create(dossier=candidate.dossier, disease="Lupus")
    response = token_client(people.curator).patch(
        f"/api/v1/candidates/{other.pk}/", {"disease": candidate.disease}, format="json"
    )
    assert response.status_code == 400, response.json()
    assert reload(other).disease == "Lupus"


# ---------------------------------------------------------------- curating suggestions


def test_curating_recomputes_the_level_shown_by_the_api(
    people: Personas, candidate: Candidate, suggested: tuple[CandidateTrial, CandidatePublication]
) -> None:
    trial, _ = suggested
    curator = token_client(people.curator)
    detail = curator.get(f"/api/v1/candidates/{candidate.pk}/").json()
    assert detail["computed_evidence_level"] == ""  # never computed yet
    [link] = [row for row in detail["trials"] if row["id"] == trial.pk]
    assert link["curation_status"] == "suggested" and link["candidate"] == candidate.pk
    assert detail["publications"][0]["id"] == suggested[1].pk

    body = {"decision": "included", "grade": "B", "key_findings": "  Met its primary endpoint. "}
    response = curator.post(f"/api/v1/trial-links/{trial.pk}/curate/", body, format="json")
    assert response.status_code == 200, response.json()
    curated = response.json()
    assert (curated["id"], curated["curation_status"], curated["relevance"]) == (trial.pk, "included", "B")
    assert curated["key_findings"] == "Met its primary endpoint." and curated["trial"]["nct_id"] == trial.trial.nct_id
    assert response["ETag"] == f'"{reload(candidate).version}"'

    fresh = reload(candidate)  # the level by the rules of dossiers/evidence_level.py, stored by the service
    assert fresh.computed_evidence_level in ("L1", "L2")  # an included completed Phase 3 trial
    detail = curator.get(f"/api/v1/candidates/{candidate.pk}/").json()
    shown = (detail["computed_evidence_level"], detail["evidence_level_reasons"])
    assert shown == (fresh.computed_evidence_level, fresh.evidence_level_reasons)
    assert trial.trial.nct_id in detail["evidence_level_reasons"][0]
    listed = curator.get("/api/v1/candidates/").json()["results"][0]
    assert (listed["computed_evidence_level"], listed["evidence_level_reasons"]) == shown


def test_curating_refuses_a_bad_grade_or_decision_and_a_stale_if_match(
    people: Personas, candidate: Candidate, suggested: tuple[CandidateTrial, CandidatePublication]
) -> None:
    trial, paper = suggested
    curator = token_client(people.curator)
    bad_grade = curator.post(f"/api/v1/trial-links/{trial.pk}/curate/", {"decision": "included", "grade": "3"})
    assert bad_grade.status_code == 400 and "relevance grade" in bad_grade.json()["detail"]
    bad_decision = curator.post(f"/api/v1/publication-links/{paper.pk}/curate/", {"decision": "suggested"})
    assert bad_decision.status_code == 400 and list(bad_decision.json()["errors"]) == ["decision"]
    stale = curator.post(
        f"/api/v1/trial-links/{trial.pk}/curate/", {"decision": "excluded"}, HTTP_IF_MATCH=f'"{candidate.version + 7}"'
    )
    assert stale.status_code == 412
    assert CandidateTrial.objects.get(pk=trial.pk).curation_status == CurationStatus.SUGGESTED
    # a trial link's id under publication-links is another object: not found
    assert (
        curator.post(f"/api/v1/publication-links/{trial.pk + 1000}/curate/", {"decision": "excluded"}).status_code
        == 404
    )


# ---------------------------------------------------------------- new since last review


def test_new_evidence_count_and_mark_as_reviewed(people: Personas, candidate: Candidate) -> None:
    for kind in (EvidenceChange.Kind.NEW_TRIAL, EvidenceChange.Kind.TRIAL_STOPPED_FOR_SAFETY):
        EvidenceChange.objects.create(
            candidate=candidate, kind=kind, significant=kind.endswith("safety"), detail={"nct_id": "NCT0001"}
        )
    viewer, curator = token_client(people.viewer), token_client(people.curator)
    detail = viewer.get(f"/api/v1/candidates/{candidate.pk}/").json()
    assert detail["new_evidence_count"] == 2 and detail["evidence_seen_at"] is None
    assert {(c["kind"], c["significant"]) for c in detail["new_evidence"]} == {
        ("new_trial", False),
        ("trial_stopped_for_safety", True),
    }
    assert viewer.get("/api/v1/candidates/").json()["results"][0]["new_evidence_count"] == 2

    seen = viewer.post(f"/api/v1/candidates/{candidate.pk}/evidence-seen/")
    assert seen.status_code == 200 and seen.json()["candidate"] == candidate.pk
    detail = viewer.get(f"/api/v1/candidates/{candidate.pk}/").json()
    assert detail["new_evidence_count"] == 0 and detail["new_evidence"] == []
    assert detail["evidence_seen_at"] == seen.json()["seen_at"]
    assert viewer.get("/api/v1/candidates/").json()["results"][0]["new_evidence_count"] == 0
    # per user: the curator has not reviewed them yet
    assert curator.get(f"/api/v1/candidates/{candidate.pk}/").json()["new_evidence_count"] == 2
    EvidenceChange.objects.create(candidate=candidate, kind=EvidenceChange.Kind.NEW_PUBLICATION)
    assert viewer.get(f"/api/v1/candidates/{candidate.pk}/").json()["new_evidence_count"] == 1
