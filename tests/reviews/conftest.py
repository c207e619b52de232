"""Named personas and helpers that walk a candidate through the workflow with the real services."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from django.contrib.auth.models import User

from dossiers.models import Candidate, Decision, GuardrailCondition, Market
from portal.roles import Role
from reviews import services
from reviews.models import AuditEvent
from tests.factories import PASSWORD, make_candidate, make_dossier, make_market, make_user


@dataclass
class Personas:
    market: Market
    curator: User
    reviewer1: User
    reviewer2: User
    reviewer3: User
    approver: User
    approver2: User
    viewer: User
    outsider: User


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings) -> None:
    """Nine personas with PBKDF2 cost a second per test; the password check itself is what matters."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def people(db: None) -> Personas:
    india = make_market("IN", "India")
    canada = make_market("CA", "Canada")
    return Personas(
        market=india,
        curator=make_user("curator", Role.CURATOR, markets=[india]),
        reviewer1=make_user("reviewer1", Role.REVIEWER, markets=[india]),
        reviewer2=make_user("reviewer2", Role.REVIEWER, markets=[india]),
        reviewer3=make_user("reviewer3", Role.REVIEWER, markets=[india]),
        approver=make_user("approver", Role.APPROVER, markets=[india]),
        approver2=make_user("approver2", Role.APPROVER, markets=[india]),
        viewer=make_user("viewer", Role.VIEWER, markets=[india]),
        # every role, but in another market: sees nothing of India
        outsider=make_user("outsider", Role.CURATOR, Role.REVIEWER, Role.APPROVER, Role.VIEWER, markets=[canada]),
    )


@pytest.fixture
def candidate(people: Personas) -> Candidate:
    """A candidate whose evidence passes gating (interactions checked, no blocking gap), one condition."""
    dossier = make_dossier(market=people.market, interaction_total=12)
    candidate = make_candidate(dossier, disease="Multiple myeloma")
    GuardrailCondition.objects.create(
        candidate=candidate, title="Confirm label warnings", owner=people.curator, due_date=dt.date(2030, 1, 1)
    )
    return candidate


def reload(candidate: Candidate) -> Candidate:
    return Candidate.objects.get(pk=candidate.pk)


def service_trail(candidate: Candidate) -> list[tuple[str, str, str, str | None]]:
    """(action, from, to, actor) of the candidate's service-written audit rows, oldest first."""
    rows = AuditEvent.objects.filter(candidate=candidate).exclude(action__startswith="row.").order_by("at", "id")
    return [(e.action, e.from_state, e.to_state, e.actor.username if e.actor else None) for e in rows]


def to_in_review(candidate: Candidate, p: Personas) -> None:
    services.candidate_triage(candidate_id=candidate.pk, by=p.curator)
    services.candidate_start_curation(candidate_id=candidate.pk, by=p.curator)
    services.review_assign(
        candidate_id=candidate.pk, by=p.curator, reviewers=[p.reviewer1, p.reviewer2], due_date=dt.date(2030, 1, 1)
    )
    services.candidate_send_to_review(candidate_id=candidate.pk, by=p.curator)


def vote(candidate: Candidate, reviewer: User, decision: str = Decision.GUARDRAILS, level: str = "L2") -> None:
    services.review_submit(
        candidate_id=candidate.pk,
        by=reviewer,
        recommendation=decision,
        evidence_level=level,
        decision_stage="S2",
        rationale=f"{reviewer.username}'s reasons",
        proposed_conditions=["Confirm label warnings"],
    )


def to_decision_pending(candidate: Candidate, p: Personas) -> None:
    to_in_review(candidate, p)
    vote(candidate, p.reviewer1)
    vote(candidate, p.reviewer2)


def to_signed_off(candidate: Candidate, p: Personas, decision: str = Decision.GUARDRAILS) -> None:
    to_decision_pending(candidate, p)
    services.signoff_create(candidate_id=candidate.pk, by=p.approver, password=PASSWORD, decision=decision)
