"""Workflow pages: a role × action matrix through the pages, blindness, the audit CSV and query counts."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from dossiers.models import Candidate, Decision, GuardrailCondition
from portal.roles import Role
from reviews import services
from reviews.models import AuditEvent, Comment, Review, Watch
from tests.factories import PASSWORD, make_candidate, make_dossier, make_user
from tests.reviews.conftest import Personas, reload, to_decision_pending, to_in_review, to_signed_off, vote

ROLES = ("viewer", "curator", "reviewer", "approver", "admin", "outsider")


@pytest.fixture
def admin(people: Personas) -> User:
    return make_user("admin", Role.ADMIN)


def actor(p: Personas, admin: User, role: str) -> User:
    """The persona playing a role; "reviewer" is reviewer1, assigned to review once there is a round."""
    return admin if role == "admin" else getattr(p, "reviewer1" if role == "reviewer" else role)


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def to_triaged(c: Candidate, p: Personas) -> None:
    services.candidate_triage(candidate_id=c.pk, by=p.curator)


def to_in_curation(c: Candidate, p: Personas) -> None:
    to_triaged(c, p)
    services.candidate_start_curation(candidate_id=c.pk, by=p.curator)


def to_assigned(c: Candidate, p: Personas) -> None:
    to_in_curation(c, p)
    services.review_assign(candidate_id=c.pk, by=p.curator, reviewers=[p.reviewer1, p.reviewer2])


def to_conflict(c: Candidate, p: Personas) -> None:
    to_in_review(c, p)
    vote(c, p.reviewer1, Decision.GUARDRAILS, "L2")
    vote(c, p.reviewer2, Decision.HOLD, "L3")


def to_deprioritized(c: Candidate, p: Personas) -> None:
    services.candidate_deprioritize(candidate_id=c.pk, by=p.curator, reason_code="duplicate")


def nothing(c: Candidate, p: Personas) -> None:
    return None


def condition_of(c: Candidate) -> GuardrailCondition:
    return c.conditions.get()


@dataclass(frozen=True)
class Case:
    """One transition through the pages: how to get there, what to post, who may, how to tell it worked."""

    url: str
    setup: Callable[[Candidate, Personas], None]
    data: Callable[[Candidate, Personas], dict[str, Any]]
    allowed: frozenset[str]
    done: Callable[[Candidate, User], bool]
    condition: bool = False


def status_is(status: str) -> Callable[[Candidate, User], bool]:
    return lambda c, user: reload(c).status == status


VISIBLE = frozenset(ROLES) - {"outsider"}
CASES: dict[str, Case] = {
    "triage": Case(
        "triage", nothing, lambda c, p: {}, frozenset({"curator", "admin"}), status_is(Candidate.Status.TRIAGED)
    ),
    "deprioritize": Case(
        "deprioritize",
        nothing,
        lambda c, p: {"reason_code": "weak_strategic", "reason_text": "Small market"},
        frozenset({"curator", "admin"}),
        status_is(Candidate.Status.DEPRIORITIZED),
    ),
    "revive": Case(
        "revive",
        to_deprioritized,
        lambda c, p: {"reason": "New trial"},
        frozenset({"curator", "admin"}),
        status_is(Candidate.Status.PREDICTED),
    ),
    "start_curation": Case(
        "start_curation",
        to_triaged,
        lambda c, p: {},
        frozenset({"curator", "admin"}),
        status_is(Candidate.Status.IN_CURATION),
    ),
    "assign": Case(
        "assign",
        to_in_curation,
        lambda c, p: {"reviewers": [p.reviewer1.pk, p.reviewer2.pk], "due_date": "2030-01-01"},
        frozenset({"curator", "approver", "admin"}),
        lambda c, user: c.review_rounds.get().assignments.count() == 2,
    ),
    "send_to_review": Case(
        "send_to_review",
        to_assigned,
        lambda c, p: {},
        frozenset({"curator", "approver", "admin"}),
        status_is(Candidate.Status.IN_REVIEW),
    ),
    "review": Case(
        "review",
        to_in_review,
        lambda c, p: {
            "recommendation": Decision.GUARDRAILS,
            "evidence_level": "L2",
            "decision_stage": "S2",
            "rationale": "Phase 2 data",
            "proposed_conditions": "Confirm label warnings\nMonitor counts",
        },
        frozenset({"reviewer"}),
        lambda c, user: Review.objects.filter(round__candidate=c, reviewer=user).count() == 1,
    ),
    "resolve": Case(
        "resolve",
        to_conflict,
        lambda c, p: {"decision": Decision.GUARDRAILS, "level": "L2", "stage": "S2", "note": "Phase 2 is enough"},
        frozenset({"approver", "admin"}),
        status_is(Candidate.Status.DECISION_PENDING),
    ),
    "sign_off": Case(
        "sign_off",
        to_decision_pending,
        lambda c, p: {"decision": Decision.GUARDRAILS, "password": PASSWORD},
        frozenset({"approver", "admin"}),
        status_is(Candidate.Status.SIGNED_OFF),
    ),
    "condition_met": Case(
        "condition_met",
        to_signed_off,
        lambda c, p: {"note": "https://example.org/label-check"},
        frozenset({"curator", "approver", "admin"}),
        status_is(Candidate.Status.CLEARED),
        condition=True,
    ),
    "condition_waive": Case(
        "condition_waive",
        to_signed_off,
        lambda c, p: {"justification": "Covered by the label"},
        frozenset({"approver", "admin"}),
        status_is(Candidate.Status.CLEARED),
        condition=True,
    ),
    "reopen": Case(
        "reopen",
        to_signed_off,
        lambda c, p: {"reason": "New evidence"},
        frozenset({"approver", "admin"}),
        status_is(Candidate.Status.TRIAGED),
    ),
    "comment": Case(
        "comment",
        nothing,
        lambda c, p: {"body": "Looks promising @reviewer1"},
        VISIBLE,
        lambda c, user: Comment.objects.filter(candidate=c, author=user).exists(),
    ),
    "watch": Case(
        "watch",
        nothing,
        lambda c, p: {},
        VISIBLE,
        lambda c, user: Watch.objects.filter(candidate=c, user=user).exists(),
    ),
}


def post_url(case: Case, c: Candidate) -> str:
    args = [c.pk, condition_of(c).pk] if case.condition else [c.pk]
    return reverse(f"reviews:{case.url}", args=args)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", list(CASES))
def test_role_action_matrix(people: Personas, admin: User, candidate: Candidate, name: str, role: str) -> None:
    case = CASES[name]
    case.setup(candidate, people)
    user = actor(people, admin, role)
    before = (reload(candidate).status, AuditEvent.objects.count())
    response = client_for(user).post(post_url(case, candidate), case.data(candidate, people))
    if role in case.allowed:
        assert response.status_code == 302, response.content.decode()[:2000]
        assert response["Location"] == reverse("reviews:candidate_detail", args=[candidate.pk])
        assert case.done(candidate, user)
        assert AuditEvent.objects.count() > before[1] or name == "watch"
    else:
        assert response.status_code == (404 if role == "outsider" else 403)
        assert not case.done(candidate, user)
        assert (reload(candidate).status, AuditEvent.objects.count()) == before


@pytest.mark.parametrize("role", ROLES)
def test_unwatch_matrix(people: Personas, admin: User, candidate: Candidate, role: str) -> None:
    user = actor(people, admin, role)
    Watch.objects.create(candidate=candidate, user=user)
    response = client_for(user).post(reverse("reviews:unwatch", args=[candidate.pk]))
    assert response.status_code == (404 if role == "outsider" else 302)
    assert Watch.objects.filter(candidate=candidate, user=user).exists() == (role == "outsider")


def test_a_third_reviewer_resolves_a_conflict_through_the_page(people: Personas, candidate: Candidate) -> None:
    to_conflict(candidate, people)
    data = CASES["resolve"].data(candidate, people)
    assert client_for(people.reviewer2).post(reverse("reviews:resolve", args=[candidate.pk]), data).status_code == 403
    response = client_for(people.reviewer3).post(reverse("reviews:resolve", args=[candidate.pk]), data)
    assert response.status_code == 302
    assert reload(candidate).status == Candidate.Status.DECISION_PENDING


@pytest.mark.parametrize("role", ROLES)
def test_candidate_page_shows_only_the_actions_the_user_may_take(
    people: Personas, admin: User, candidate: Candidate, role: str
) -> None:
    user = actor(people, admin, role)
    response = client_for(user).get(reverse("reviews:candidate_detail", args=[candidate.pk]))
    if role == "outsider":
        assert response.status_code == 404
        return
    page = response.content.decode()
    may_triage = role in {"curator", "admin"}
    assert (reverse("reviews:triage", args=[candidate.pk]) in page) == may_triage
    assert (reverse("reviews:deprioritize", args=[candidate.pk]) in page) == may_triage
    assert reverse("reviews:sign_off", args=[candidate.pk]) not in page  # wrong state for everyone
    assert reverse("reviews:comment", args=[candidate.pk]) in page
    assert set(response.context["forms"]) == response.context["workflow"].actions - {"watch"}


def test_sign_off_page_shows_the_meaning_and_the_signature_record(people: Personas, candidate: Candidate) -> None:
    to_decision_pending(candidate, people)
    client = client_for(people.approver)
    url = reverse("reviews:candidate_detail", args=[candidate.pk])
    assert "Approved: Proceed with Guardrails" in client.get(url).content.decode()
    data = {"decision": Decision.GUARDRAILS, "password": PASSWORD}
    client.post(reverse("reviews:sign_off", args=[candidate.pk]), data)
    page = client.get(url).content.decode()
    signature = page.split('class="data signatures"')[1].split("</table>")[0]
    assert "Approver Tester" in signature and "Approved: Proceed with Guardrails" in signature
    assert " UTC (+0000)" in signature and "Valid" in signature
    assert '<span class="badge signature-valid">Signed</span> Approver Tester</a>' in page  # in the status bar


def test_wrong_password_signs_nothing_and_says_why(people: Personas, candidate: Candidate) -> None:
    to_decision_pending(candidate, people)
    data = {"decision": Decision.GUARDRAILS, "password": "wrong"}
    response = client_for(people.approver).post(reverse("reviews:sign_off", args=[candidate.pk]), data)
    assert response.status_code == 400
    assert "The password is not correct; nothing was signed." in response.content.decode()
    assert reload(candidate).status == Candidate.Status.DECISION_PENDING


def test_gating_refusal_is_shown_on_the_sign_off_form(people: Personas, candidate: Candidate) -> None:
    to_decision_pending(candidate, people)
    data = {"decision": Decision.GO, "password": PASSWORD}
    response = client_for(people.approver).post(reverse("reviews:sign_off", args=[candidate.pk]), data)
    assert response.status_code == 400
    assert "Go needs decision stage S3 or later; the candidate is at S2." in response.content.decode()
    assert not candidate.signoffs.exists()


def test_the_sign_off_form_says_beforehand_which_decisions_the_evidence_refuses(
    people: Personas, candidate: Candidate
) -> None:
    to_decision_pending(candidate, people)
    page = client_for(people.approver).get(candidate.get_absolute_url()).content.decode()
    gating = page[page.index('id="sign_off-gating"') :]
    gating = gating[: gating.index("</div>")]
    assert "<strong>Go</strong>: Go needs decision stage S3 or later; the candidate is at S2." in gating
    assert "Hold" not in gating and "Proceed with Guardrails" not in gating  # both allowed at S2
    assert 'id="sign_off-gating"' not in client_for(people.viewer).get(candidate.get_absolute_url()).content.decode()


def test_bad_input_is_refused_with_the_field_named(people: Personas, candidate: Candidate) -> None:
    client = client_for(people.curator)
    response = client.post(reverse("reviews:deprioritize", args=[candidate.pk]), {"reason_code": "other"})
    assert response.status_code == 400
    assert "A reason of &quot;Other&quot; needs a text." in response.content.decode()
    response = client.post(reverse("reviews:deprioritize", args=[candidate.pk]), {"reason_code": "bogus"})
    assert response.status_code == 400 and "Select a valid choice" in response.content.decode()
    assert reload(candidate).status == Candidate.Status.PREDICTED


def test_a_state_conflict_shows_the_service_message(people: Personas, candidate: Candidate) -> None:
    client = client_for(people.curator)
    assert client.post(reverse("reviews:triage", args=[candidate.pk])).status_code == 302
    response = client.post(reverse("reviews:triage", args=[candidate.pk]))  # a double click
    assert response.status_code == 400
    assert "it is triaged; allowed from: predicted" in response.content.decode()


def test_get_on_an_action_is_not_allowed(people: Personas, candidate: Candidate) -> None:
    assert client_for(people.curator).get(reverse("reviews:triage", args=[candidate.pk])).status_code == 405


def test_comment_mentions_are_linked_and_shown(people: Personas, candidate: Candidate) -> None:
    client = client_for(people.curator)
    client.post(reverse("reviews:comment", args=[candidate.pk]), {"body": "@reviewer1 and @outsider, see the label"})
    page = client.get(reverse("reviews:candidate_detail", args=[candidate.pk])).content.decode()
    assert '<span class="mention">@reviewer1</span>' in page
    assert "@outsider</span>" not in page  # cannot see the candidate, so not mentioned


# Blindness


def rationale_shown(client: Client, candidate: Candidate, reviewer: User) -> bool:
    response = client.get(reverse("reviews:candidate_detail", args=[candidate.pk]))
    assert response.status_code == 200
    return f"{reviewer.username}&#x27;s reasons" in response.content.decode()


def test_reviews_are_blind_on_the_page_until_every_reviewer_has_submitted(
    people: Personas, candidate: Candidate
) -> None:
    to_in_review(candidate, people)
    vote(candidate, people.reviewer1, Decision.GO, "L1")
    second, first, approver = (client_for(u) for u in (people.reviewer2, people.reviewer1, people.approver))
    assert not rationale_shown(second, candidate, people.reviewer1)
    assert not rationale_shown(approver, candidate, people.reviewer1)
    assert rationale_shown(first, candidate, people.reviewer1)  # one's own review
    page = second.get(reverse("reviews:candidate_detail", args=[candidate.pk])).content.decode()
    assert "Reviews are blind until every assigned reviewer has submitted (1 of 2 in)" in page
    assert "decision-go" not in page and "level-L1" not in page  # not even the badges of the other vote
    csv_text = approver.get(reverse("reviews:audit_csv", args=[candidate.pk])).content.decode()
    assert "reviewer1's reasons" not in csv_text and ",go," not in csv_text and "L1" not in csv_text
    vote(candidate, people.reviewer2, Decision.GUARDRAILS, "L2")
    assert rationale_shown(second, candidate, people.reviewer1)
    assert rationale_shown(approver, candidate, people.reviewer2)


# CSV export


def test_audit_csv_lists_the_candidate_trail(people: Personas, candidate: Candidate) -> None:
    to_signed_off(candidate, people)
    other = make_candidate(make_dossier(market=people.market), disease="Other disease")
    services.candidate_triage(candidate_id=other.pk, by=people.curator)
    response = client_for(people.viewer).get(reverse("reviews:audit_csv", args=[candidate.pk]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert f'filename="candidate-{candidate.pk}-audit.csv"' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    trail = [
        (r["action"], r["from_state"], r["to_state"], r["actor"]) for r in rows if not r["action"].startswith("row.")
    ]
    assert trail[0] == ("candidate.triage", "predicted", "triaged", "curator")
    assert trail[-1] == ("candidate.sign_off", "decision_pending", "signed_off", "approver")
    assert [t[0] for t in trail].count("review.submit") == 2
    assert rows[-1]["reason"] == "Approved: Proceed with Guardrails"
    assert rows[-1]["at"].endswith("+00:00")
    assert '"status": ["decision_pending", "signed_off"]' in rows[-1]["changes"]
    assert len([t for t in trail if t[0] == "candidate.triage"]) == 1  # the other candidate's is not here


def test_audit_csv_of_an_invisible_candidate_is_404(people: Personas, candidate: Candidate) -> None:
    assert client_for(people.outsider).get(reverse("reviews:audit_csv", args=[candidate.pk])).status_code == 404


# Dashboard and board


def test_dashboard_lists_each_role_its_work(people: Personas, candidate: Candidate) -> None:
    to_in_review(candidate, people)
    services.review_assign(
        candidate_id=candidate.pk, by=people.curator, reviewers=[people.reviewer3], due_date=dt.date(2020, 1, 1)
    )
    pending = make_candidate(make_dossier(market=people.market), disease="Pending disease")
    GuardrailCondition.objects.create(candidate=pending, title="A condition", owner=people.curator)
    to_decision_pending(pending, people)
    conflict = make_candidate(make_dossier(market=people.market), disease="Conflict disease")
    to_conflict(conflict, people)

    def dash(user: User) -> Any:
        response = client_for(user).get(reverse("reviews:dashboard"))
        assert response.status_code == 200
        return response.context["dash"]

    reviewer3 = dash(people.reviewer3)
    assert [a.round.candidate for a in reviewer3.assignments] == [candidate]
    assert reviewer3.awaiting_signature is None
    assert [a.reviewer for a in reviewer3.overdue] == [people.reviewer3]
    assert reviewer3.conflicts == [conflict]
    approver = dash(people.approver)
    assert approver.awaiting_signature == [pending] and approver.assignments is None
    assert dash(people.reviewer1).assignments[0].round.candidate == candidate
    curator = dash(people.curator)
    assert curator.conflicts is None and {c.pk for c in curator.recent} == {candidate.pk, pending.pk, conflict.pk}
    assert [c.candidate for c in curator.conditions] == [candidate, pending]
    outsider = dash(people.outsider)
    assert outsider.recent == [] and outsider.overdue == [] and outsider.awaiting_signature == []


def test_board_counts_candidates_per_status(people: Personas, candidate: Candidate) -> None:
    to_signed_off(candidate, people)
    dossier = make_dossier(market=people.market)
    for i in range(3):
        make_candidate(dossier, disease=f"Predicted {i}")
    response = client_for(people.viewer).get(reverse("reviews:board", args=["IN"]))
    assert response.status_code == 200
    counts = {col.status: col.count for col in response.context["board"].columns}
    assert counts["predicted"] == 3 and counts["signed_off"] == 1 and counts["in_review"] == 0
    assert response.context["board"].total == 4
    assert client_for(people.outsider).get(reverse("reviews:board", args=["IN"])).status_code == 404
    assert client_for(people.viewer).get(reverse("reviews:board", args=["XX"])).status_code == 404


# Query counts


def count_queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_candidate_page_query_count_is_constant(people: Personas, candidate: Candidate) -> None:
    to_signed_off(candidate, people)
    client = client_for(people.approver)
    url = reverse("reviews:candidate_detail", args=[candidate.pk])
    for i in range(2):
        services.comment_add(candidate_id=candidate.pk, by=people.curator, body=f"Note {i} @reviewer1 @reviewer2")
    small = count_queries(client, url)
    for i in range(20):
        services.comment_add(candidate_id=candidate.pk, by=people.reviewer1, body=f"More {i} @curator")
    services.candidate_reopen(candidate_id=candidate.pk, by=people.approver, reason="New data")
    to_signed_off_again(candidate, people)
    assert count_queries(client, url) == small
    assert small <= 45


def to_signed_off_again(candidate: Candidate, p: Personas) -> None:
    services.candidate_start_curation(candidate_id=candidate.pk, by=p.curator)
    services.review_assign(candidate_id=candidate.pk, by=p.curator, reviewers=[p.reviewer1, p.reviewer3])
    services.candidate_send_to_review(candidate_id=candidate.pk, by=p.curator)
    vote(candidate, p.reviewer1)
    vote(candidate, p.reviewer3)
    services.signoff_create(candidate_id=candidate.pk, by=p.approver2, password=PASSWORD, decision=Decision.GUARDRAILS)


def test_who_settled_a_conflict_is_not_asked_to_sign_it(people: Personas, candidate: Candidate) -> None:
    to_conflict(candidate, people)
    services.conflict_resolve(
        candidate_id=candidate.pk, by=people.approver, decision="hold", level="L3", stage="S1", note="Hold."
    )
    awaiting = {
        user.username: client_for(user).get(reverse("reviews:dashboard")).context["dash"].awaiting_signature
        for user in (people.approver, people.approver2)
    }
    assert awaiting == {"approver": [], "approver2": [candidate]}


def test_dashboard_flags_new_evidence_until_the_user_has_looked(people: Personas, candidate: Candidate) -> None:
    from dossiers.models import EvidenceChange
    from dossiers.services.refresh import candidate_mark_seen

    other = make_candidate(make_dossier(market=people.market), disease="Quiet disease")
    EvidenceChange.objects.create(candidate=candidate, kind="new_trial")
    EvidenceChange.objects.create(candidate=candidate, kind="new_publication")
    client = client_for(people.reviewer1)

    response = client.get(reverse("reviews:dashboard"))
    assert [(c, c.new_evidence) for c in response.context["dash"].new_evidence] == [(candidate, 2)]
    assert other not in response.context["dash"].new_evidence
    assert "2 new" in response.content.decode()
    candidate_mark_seen(candidate_id=candidate.pk, by=people.reviewer1)
    response = client.get(reverse("reviews:dashboard"))
    assert response.context["dash"].new_evidence == [] and 'id="new-evidence"' not in response.content.decode()
    assert client_for(people.outsider).get(reverse("reviews:dashboard")).context["dash"].new_evidence == []


def test_dashboard_and_board_query_counts_are_constant(people: Personas, candidate: Candidate) -> None:
    client = client_for(people.approver)
    urls = [reverse("reviews:dashboard"), reverse("reviews:board", args=["IN"])]
    to_decision_pending(candidate, people)
    small = [count_queries(client, url) for url in urls]
    for i in range(6):
        extra = make_candidate(make_dossier(market=people.market), disease=f"Extra {i}")
        GuardrailCondition.objects.create(candidate=extra, title="Condition", owner=people.approver)
        (to_decision_pending if i % 2 else to_conflict)(extra, people)
    assert [count_queries(client, url) for url in urls] == small
    assert small[0] <= 12 and small[1] <= 8


def test_a_changed_content_shows_the_signature_invalid(people: Personas, candidate: Candidate) -> None:
    to_signed_off(candidate, people)
    client = client_for(people.viewer)
    url = reverse("reviews:candidate_detail", args=[candidate.pk])
    assert "signature-invalid" not in client.get(url).content.decode()
    Candidate.objects.filter(pk=candidate.pk).update(summary="Edited after signing")
    page = client.get(url).content.decode()
    assert "The content changed since signing." in page and "signature-invalid" in page
    services.signature_check(candidate_id=candidate.pk)
    page = client.get(url).content.decode()
    assert "Signed content changed: candidate." in page
    assert reload(candidate).status == Candidate.Status.DECISION_PENDING


def test_reopen_keeps_earlier_rounds_reviews_and_signatures_on_the_page(people: Personas, candidate: Candidate) -> None:
    to_signed_off(candidate, people)
    client = client_for(people.approver)
    response = client.post(reverse("reviews:reopen", args=[candidate.pk]), {"reason": "New trial results"})
    assert response.status_code == 302
    response = client.get(reverse("reviews:candidate_detail", args=[candidate.pk]))
    page = response.content.decode()
    assert response.context["workflow"].round.number == 2
    assert "reviewer1&#x27;s reasons" in page and "reviewer2&#x27;s reasons" in page  # round 1 stays readable
    assert "for round 1, since reopened" in page
    assert "Round 2 — New trial results" in page


def test_pipeline_link_opens_the_only_board_or_lists_the_markets(people: Personas, admin: User) -> None:
    response = client_for(people.viewer).get(reverse("reviews:boards"))
    assert response.status_code == 302 and response["Location"] == reverse("reviews:board", args=["IN"])
    page = client_for(admin).get(reverse("reviews:boards")).content.decode()
    assert reverse("reviews:board", args=["IN"]) in page and reverse("reviews:board", args=["CA"]) in page
    assert 'href="/markets/"' in page  # the nav link
