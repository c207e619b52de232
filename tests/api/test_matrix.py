"""Role × action matrix through the API: each action, from a state that allows it, tried by every persona.

Only the allowed personas succeed; the others get 403 (visible, not allowed) or 404 (the outsider, who
cannot see the market) and nothing is written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import User

from dossiers.models import Candidate, Decision
from reviews import services
from reviews.models import AuditEvent
from tests.api.conftest import token_client
from tests.factories import PASSWORD
from tests.reviews.conftest import Personas, reload, to_decision_pending, to_in_review, to_signed_off, vote

PERSONAS = ["viewer", "curator", "reviewer", "approver", "admin", "outsider"]


def _predicted(c: Candidate, p: Personas) -> None:
    return None


def _deprioritized(c: Candidate, p: Personas) -> None:
    services.candidate_deprioritize(candidate_id=c.pk, by=p.curator, reason_code="duplicate")


def _triaged(c: Candidate, p: Personas) -> None:
    services.candidate_triage(candidate_id=c.pk, by=p.curator)


def _in_curation(c: Candidate, p: Personas) -> None:
    _triaged(c, p)
    services.candidate_start_curation(candidate_id=c.pk, by=p.curator)


def _assigned(c: Candidate, p: Personas) -> None:
    _in_curation(c, p)
    services.review_assign(candidate_id=c.pk, by=p.curator, reviewers=[p.reviewer1, p.reviewer2])


def _in_conflict(c: Candidate, p: Personas) -> None:
    to_in_review(c, p)
    vote(c, p.reviewer1, Decision.GUARDRAILS)
    vote(c, p.reviewer2, Decision.HOLD, level="L3")


@dataclass(frozen=True)
class Case:
    setup: Callable[[Candidate, Personas], None]
    method: str
    path: str  # under /api/v1/candidates/{id}/, or "condition:<action>" for /api/v1/conditions/{id}/<action>/
    body: dict[str, Any] | None
    allowed: frozenset[str]
    code: int = 200
    audited: bool = True  # watching changes nothing about the candidate and writes no audit row


REVIEW = {"recommendation": "guardrails", "evidence_level": "L2", "decision_stage": "S2", "rationale": "Why."}
CASES: dict[str, Case] = {
    "triage": Case(_predicted, "post", "triage", {}, frozenset({"curator", "admin"})),
    "deprioritize": Case(
        _predicted, "post", "deprioritize", {"reason_code": "duplicate"}, frozenset({"curator", "admin"})
    ),
    "revive": Case(_deprioritized, "post", "revive", {}, frozenset({"curator", "admin"})),
    "start-curation": Case(_triaged, "post", "start-curation", {}, frozenset({"curator", "admin"})),
    "assign": Case(
        _in_curation,
        "post",
        "assign",
        {"reviewers": ["reviewer1", "reviewer2"]},
        frozenset({"curator", "approver", "admin"}),
    ),
    "send-to-review": Case(_assigned, "post", "send-to-review", {}, frozenset({"curator", "approver", "admin"})),
    "review": Case(to_in_review, "post", "reviews", REVIEW, frozenset({"reviewer"}), 201),
    "resolve-conflict": Case(
        _in_conflict,
        "post",
        "resolve-conflict",
        {"decision": "hold", "level": "L3", "stage": "S1", "note": "Settled."},
        frozenset({"approver", "admin"}),
        201,
    ),
    "sign-off": Case(
        to_decision_pending,
        "post",
        "sign-off",
        {"password": PASSWORD, "decision": "guardrails"},
        frozenset({"approver", "admin"}),
        201,
    ),
    "reopen": Case(to_signed_off, "post", "reopen", {"reason": "New evidence."}, frozenset({"approver", "admin"})),
    "mark-met": Case(
        to_signed_off, "post", "condition:mark-met", {"note": "Done."}, frozenset({"curator", "approver", "admin"})
    ),
    "waive": Case(
        to_signed_off, "post", "condition:waive", {"justification": "Why."}, frozenset({"approver", "admin"})
    ),
    "comment": Case(_predicted, "post", "comments", {"body": "Note."}, frozenset(set(PERSONAS) - {"outsider"}), 201),
    "watch": Case(_predicted, "put", "watch", None, frozenset(set(PERSONAS) - {"outsider"}), audited=False),
}


def _persona(name: str, people: Personas, admin: User) -> User:
    return {"reviewer": people.reviewer1, "admin": admin}.get(name) or getattr(people, name)


def _url(case: Case, candidate: Candidate) -> str:
    if case.path.startswith("condition:"):
        condition = candidate.conditions.get()
        return f"/api/v1/conditions/{condition.pk}/{case.path.removeprefix('condition:')}/"
    return f"/api/v1/candidates/{candidate.pk}/{case.path}/"


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("action", list(CASES))
def test_role_action_matrix(people: Personas, candidate: Candidate, admin: User, action: str, persona: str) -> None:
    case = CASES[action]
    case.setup(candidate, people)
    before, events = reload(candidate), AuditEvent.objects.count()
    response = getattr(token_client(_persona(persona, people, admin)), case.method)(
        _url(case, candidate), case.body, format="json"
    )
    if persona in case.allowed:
        assert response.status_code == case.code, response.json()
        assert AuditEvent.objects.count() > events or not case.audited  # it took effect, on the record
        return
    expected = 404 if persona == "outsider" else 403
    assert response.status_code == expected, response.json()
    assert response.json()["code"] == ("not_found" if expected == 404 else "permission_denied")
    after = reload(candidate)
    assert (after.status, after.version) == (before.status, before.version)
    assert AuditEvent.objects.count() == events
