"""Service tests: the whole walk, reopen, conflict, wrong states, gating, signatures, comments."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import ProtectedError
from django.utils import timezone

from dossiers.models import Candidate, DataGap, Decision, GuardrailCondition
from reviews import services
from reviews.models import (
    TRANSITIONS,
    AuditEvent,
    ConflictResolution,
    Deprioritization,
    Notification,
    Review,
    ReviewRound,
    SignOff,
    Watch,
)
from reviews.permissions import allowed_actions
from reviews.selectors import consensus_state, signature_status
from tests.factories import PASSWORD, make_user
from tests.reviews.conftest import (
    Personas,
    reload,
    service_trail,
    to_decision_pending,
    to_in_review,
    to_signed_off,
    vote,
)

S = Candidate.Status


def test_walk_from_predicted_to_cleared(people: Personas, candidate: Candidate) -> None:
    p, pk = people, candidate.pk
    steps = [
        (lambda: services.candidate_triage(candidate_id=pk, by=p.curator), S.TRIAGED),
        (lambda: services.candidate_start_curation(candidate_id=pk, by=p.curator), S.IN_CURATION),
        (
            lambda: services.review_assign(candidate_id=pk, by=p.curator, reviewers=[p.reviewer1, p.reviewer2]),
            S.IN_CURATION,
        ),
        (lambda: services.candidate_send_to_review(candidate_id=pk, by=p.curator), S.IN_REVIEW),
        (lambda: vote(candidate, p.reviewer1), S.IN_REVIEW),
        (lambda: vote(candidate, p.reviewer2), S.DECISION_PENDING),
        (
            lambda: services.signoff_create(
                candidate_id=pk, by=p.approver, password=PASSWORD, decision=Decision.GUARDRAILS
            ),
            S.SIGNED_OFF,
        ),
        (
            lambda: services.condition_mark_met(
                condition_id=candidate.conditions.get().pk, by=p.curator, note="https://example.org/label-check"
            ),
            S.CLEARED,
        ),
    ]
    for step, expected in steps:
        step()
        assert reload(candidate).status == expected

    assert service_trail(candidate) == [
        ("candidate.triage", "predicted", "triaged", "curator"),
        ("candidate.start_curation", "triaged", "in_curation", "curator"),
        ("review.assign", "", "", "curator"),
        ("review.assign", "", "", "curator"),
        ("candidate.send_to_review", "in_curation", "in_review", "curator"),
        ("review.submit", "", "", "reviewer1"),
        ("review.submit", "", "", "reviewer2"),
        ("candidate.review_agree", "in_review", "decision_pending", "reviewer2"),
        ("candidate.sign_off", "decision_pending", "signed_off", "approver"),
        ("condition.mark_met", "open", "met", "curator"),
        ("candidate.clear", "signed_off", "cleared", "curator"),
    ]
    done = reload(candidate)
    assert (done.recommended_decision, done.evidence_level, done.decision_stage) == ("guardrails", "L2", "S2")
    signoff = SignOff.objects.get(candidate=candidate)
    assert signoff.valid and signoff.signer_name == "Approver Tester"
    assert signoff.meaning == "Approved: Proceed with Guardrails"
    assert signoff.signed_timezone == "UTC" and timezone.is_aware(signoff.signed_at)
    assert len(signoff.content_hash) == 64
    condition = GuardrailCondition.objects.get(candidate=candidate)
    assert (condition.status, condition.resolved_by) == ("met", p.curator)
    assert ReviewRound.objects.get(candidate=candidate).curated_by == p.curator


def test_audit_changes_record_before_and_after(people: Personas, candidate: Candidate) -> None:
    to_decision_pending(candidate, people)
    agree = AuditEvent.objects.get(candidate=candidate, action="candidate.review_agree")
    assert agree.changes["status"] == ["in_review", "decision_pending"]
    assert agree.changes["recommended_decision"] == ["", "guardrails"]
    assert agree.changes["evidence_level"] == ["L5", "L2"]


def test_signed_off_reopened_and_signed_again(people: Personas, candidate: Candidate) -> None:
    p = people
    to_signed_off(candidate, p)
    first = SignOff.objects.get(candidate=candidate)
    first_review_ids = set(Review.objects.values_list("pk", flat=True))

    new_round = services.candidate_reopen(candidate_id=candidate.pk, by=p.approver, reason="New phase 3 results")
    assert reload(candidate).status == S.TRIAGED
    assert new_round.number == 2 and new_round.reason == "New phase 3 results"
    assert ReviewRound.objects.get(candidate=candidate, number=1).closed_at is not None

    services.candidate_start_curation(candidate_id=candidate.pk, by=p.curator)
    services.review_assign(candidate_id=candidate.pk, by=p.curator, reviewers=[p.reviewer1, p.reviewer3])
    services.candidate_send_to_review(candidate_id=candidate.pk, by=p.curator)
    vote(candidate, p.reviewer1, Decision.HOLD, "L3")
    vote(candidate, p.reviewer3, Decision.HOLD, "L3")
    services.signoff_create(candidate_id=candidate.pk, by=p.approver2, password=PASSWORD, decision=Decision.HOLD)

    assert reload(candidate).status == S.SIGNED_OFF
    old = SignOff.objects.get(pk=first.pk)
    assert (old.valid, old.decision, old.content_hash, old.round.number) == (
        True,
        "guardrails",
        first.content_hash,
        1,
    )
    second = SignOff.objects.exclude(pk=first.pk).get()
    assert (second.valid, second.decision, second.round) == (True, "hold", new_round)
    assert first_review_ids <= set(Review.objects.values_list("pk", flat=True))
    assert Review.objects.filter(round__number=1).count() == 2
    reopen = AuditEvent.objects.get(candidate=candidate, action="candidate.reopen")
    assert (reopen.from_state, reopen.to_state, reopen.reason) == ("signed_off", "triaged", "New phase 3 results")


def test_conflict_resolved_by_a_third_reviewer(people: Personas, candidate: Candidate) -> None:
    p = people
    to_in_review(candidate, p)
    vote(candidate, p.reviewer1, Decision.GO, "L2")
    vote(candidate, p.reviewer2, Decision.GUARDRAILS, "L2")
    assert reload(candidate).status == S.IN_CONFLICT
    assert consensus_state(candidate) == "conflict"

    for not_allowed in (p.reviewer1, p.curator, p.viewer, p.outsider):
        with pytest.raises(PermissionDenied):
            services.conflict_resolve(
                candidate_id=candidate.pk, by=not_allowed, decision="hold", level="L2", stage="S2", note="x"
            )

    resolution = services.conflict_resolve(
        candidate_id=candidate.pk,
        by=p.reviewer3,
        decision=Decision.GUARDRAILS,
        level="L2",
        stage="S2",
        note="Safety signal warrants guardrails.",
    )
    done = reload(candidate)
    assert (done.status, done.recommended_decision) == (S.DECISION_PENDING, "guardrails")
    assert ConflictResolution.objects.get().resolved_by == p.reviewer3 == resolution.resolved_by
    assert consensus_state(candidate) == "resolved"
    assert service_trail(candidate)[-2:] == [
        ("candidate.review_conflict", "in_review", "in_conflict", "reviewer2"),
        ("candidate.conflict_resolve", "in_conflict", "decision_pending", "reviewer3"),
    ]


def test_conflict_on_level_alone(people: Personas, candidate: Candidate) -> None:
    to_in_review(candidate, people)
    vote(candidate, people.reviewer1, Decision.GUARDRAILS, "L2")
    vote(candidate, people.reviewer2, Decision.GUARDRAILS, "L3")
    assert reload(candidate).status == S.IN_CONFLICT


def test_deprioritize_needs_text_for_other_and_revive(people: Personas, candidate: Candidate) -> None:
    with pytest.raises(ValidationError, match="Other"):
        services.candidate_deprioritize(candidate_id=candidate.pk, by=people.curator, reason_code="other")
    with pytest.raises(ValidationError, match="reason_code"):
        services.candidate_deprioritize(candidate_id=candidate.pk, by=people.curator, reason_code="bored")
    assert reload(candidate).status == S.PREDICTED and not AuditEvent.objects.filter(action__startswith="cand").exists()

    services.candidate_deprioritize(
        candidate_id=candidate.pk, by=people.curator, reason_code="other", reason_text="Market too small"
    )
    assert reload(candidate).status == S.DEPRIORITIZED
    assert Deprioritization.objects.get().reason_code == "other"
    services.candidate_revive(candidate_id=candidate.pk, by=people.curator, reason="Market grew")
    assert reload(candidate).status == S.PREDICTED
    assert service_trail(candidate) == [
        ("candidate.deprioritize", "predicted", "deprioritized", "curator"),
        ("candidate.revive", "deprioritized", "predicted", "curator"),
    ]
    assert AuditEvent.objects.get(action="candidate.deprioritize").reason == "Other: Market too small"


def test_send_to_review_needs_two_reviewers_not_the_curator(people: Personas, candidate: Candidate) -> None:
    p = people
    services.candidate_triage(candidate_id=candidate.pk, by=p.curator)
    services.candidate_start_curation(candidate_id=candidate.pk, by=p.curator)
    services.review_assign(candidate_id=candidate.pk, by=p.curator, reviewers=[p.reviewer1])
    with pytest.raises(ValidationError, match="At least two reviewers"):
        services.candidate_send_to_review(candidate_id=candidate.pk, by=p.curator)

    p.curator.groups.add(*p.reviewer1.groups.all())  # the curator is also a reviewer: still not of this one
    curator = type(p.curator).objects.get(pk=p.curator.pk)
    for wrong in (curator, p.outsider, p.viewer):
        with pytest.raises(ValidationError, match="Not eligible"):
            services.review_assign(candidate_id=candidate.pk, by=p.curator, reviewers=[p.reviewer2, wrong])
    assert reload(candidate).status == S.IN_CURATION
    assert ReviewRound.objects.get().assignments.count() == 1


def test_reviewer_cannot_submit_twice_or_unassigned(people: Personas, candidate: Candidate) -> None:
    to_in_review(candidate, people)
    vote(candidate, people.reviewer1)
    with pytest.raises(PermissionDenied):
        vote(candidate, people.reviewer1)
    with pytest.raises(PermissionDenied):
        vote(candidate, people.reviewer3)
    with pytest.raises(ValidationError, match="rationale"):
        services.review_submit(
            candidate_id=candidate.pk,
            by=people.reviewer2,
            recommendation="go",
            evidence_level="L2",
            decision_stage="S3",
            rationale="  ",
        )
    assert Review.objects.count() == 1 and reload(candidate).status == S.IN_REVIEW


# ---------------------------------------------------------------- every transition from every wrong state


def _attempts(candidate: Candidate, p: Personas) -> dict:
    """One call per action, made by someone whom the who-rules allow, so that only the state refuses."""
    pk = candidate.pk
    condition = candidate.conditions.get()
    return {
        "triage": lambda: services.candidate_triage(candidate_id=pk, by=p.curator),
        "deprioritize": lambda: services.candidate_deprioritize(candidate_id=pk, by=p.curator, reason_code="duplicate"),
        "revive": lambda: services.candidate_revive(candidate_id=pk, by=p.curator),
        "start_curation": lambda: services.candidate_start_curation(candidate_id=pk, by=p.curator),
        "review_assign": lambda: services.review_assign(candidate_id=pk, by=p.curator, reviewers=[p.reviewer3]),
        "send_to_review": lambda: services.candidate_send_to_review(candidate_id=pk, by=p.curator),
        "review_submit": lambda: vote(candidate, p.reviewer2),
        "conflict_resolve": lambda: services.conflict_resolve(
            candidate_id=pk, by=p.approver, decision="hold", level="L2", stage="S2", note="n"
        ),
        "sign_off": lambda: services.signoff_create(
            candidate_id=pk, by=p.approver, password=PASSWORD, decision=Decision.HOLD
        ),
        "condition_mark_met": lambda: services.condition_mark_met(condition_id=condition.pk, by=p.curator, note="n"),
        "condition_waive": lambda: services.condition_waive(
            condition_id=condition.pk, by=p.approver, justification="j"
        ),
        "reopen": lambda: services.candidate_reopen(candidate_id=pk, by=p.approver, reason="r"),
    }


WRONG = [
    (action, state)
    for action, (sources, _) in TRANSITIONS.items()
    if action not in ("comment", "watch", "signature_invalidate")
    for state in S.values
    if state not in sources
]


@pytest.mark.parametrize(("action", "state"), WRONG)
def test_every_transition_refused_from_every_wrong_state(
    people: Personas, candidate: Candidate, action: str, state: str
) -> None:
    # A round with a curator and an assigned reviewer who has not voted, then the state forced.
    to_in_review(candidate, people)
    vote(candidate, people.reviewer1)
    Candidate.objects.filter(pk=candidate.pk).update(status=state)
    before = (AuditEvent.objects.count(), Review.objects.count(), SignOff.objects.count())

    with pytest.raises(ValidationError, match="allowed from"):
        _attempts(candidate, people)[action]()

    assert reload(candidate).status == state
    assert (AuditEvent.objects.count(), Review.objects.count(), SignOff.objects.count()) == before
    assert action not in allowed_actions(people.approver, reload(candidate)) | allowed_actions(
        people.curator, reload(candidate)
    )


# ---------------------------------------------------------------- sign-off: gating, password, signer


def test_blocking_data_gap_refuses_go_with_the_reason(people: Personas, candidate: Candidate) -> None:
    to_decision_pending(candidate, people)
    Candidate.objects.filter(pk=candidate.pk).update(decision_stage="S3")
    candidate.dossier.data_gaps.create(code="DG001", description="Label warnings never retrieved", severity="blocking")
    for decision in (Decision.GO, Decision.GUARDRAILS):
        with pytest.raises(ValidationError) as refused:
            services.signoff_create(candidate_id=candidate.pk, by=people.approver, password=PASSWORD, decision=decision)
        assert "DG001 is open and blocking" in str(refused.value)
    assert reload(candidate).status == S.DECISION_PENDING and not SignOff.objects.exists()

    services.signoff_create(candidate_id=candidate.pk, by=people.approver, password=PASSWORD, decision=Decision.HOLD)
    assert reload(candidate).status == S.SIGNED_OFF


def test_unchecked_interactions_refuse_guardrails(people: Personas, candidate: Candidate) -> None:
    to_decision_pending(candidate, people)
    type(candidate.dossier).objects.filter(pk=candidate.dossier_id).update(interaction_total=None)
    with pytest.raises(ValidationError, match="interactions were never checked"):
        services.signoff_create(
            candidate_id=candidate.pk, by=people.approver, password=PASSWORD, decision=Decision.GUARDRAILS
        )
    # a resolved blocking gap does not gate
    candidate.dossier.data_gaps.create(code="DG002", description="x", severity="blocking", status="resolved")
    candidate.dossier.interactions.create(interacting_drug="Warfarin", severity="major")
    services.signoff_create(
        candidate_id=candidate.pk, by=people.approver, password=PASSWORD, decision=Decision.GUARDRAILS
    )


@pytest.mark.parametrize(
    ("stage", "refused", "allowed"),
    [
        ("S2", Decision.GO, Decision.GUARDRAILS),
        ("S1", Decision.GUARDRAILS, Decision.HOLD),
        ("S0", Decision.HOLD, Decision.RESEARCH),
        ("S0", Decision.GO, Decision.NO_GO),
    ],
)
def test_stage_bounds_the_decision(people: Personas, candidate: Candidate, stage: str, refused: str, allowed: str):
    to_decision_pending(candidate, people)
    Candidate.objects.filter(pk=candidate.pk).update(decision_stage=stage)
    with pytest.raises(ValidationError, match=f"needs decision stage .* the candidate is at {stage}"):
        services.signoff_create(candidate_id=candidate.pk, by=people.approver, password=PASSWORD, decision=refused)
    services.signoff_create(candidate_id=candidate.pk, by=people.approver, password=PASSWORD, decision=allowed)
    assert SignOff.objects.get().decision == allowed


def test_guardrails_without_conditions_refused(people: Personas, candidate: Candidate) -> None:
    to_decision_pending(candidate, people)
    candidate.conditions.all().delete()
    with pytest.raises(ValidationError, match="at least one condition"):
        services.signoff_create(
            candidate_id=candidate.pk, by=people.approver, password=PASSWORD, decision=Decision.GUARDRAILS
        )


def test_wrong_password_refused(people: Personas, candidate: Candidate) -> None:
    to_decision_pending(candidate, people)
    with pytest.raises(ValidationError, match="password is not correct"):
        services.signoff_create(candidate_id=candidate.pk, by=people.approver, password="guess", decision="hold")
    assert reload(candidate).status == S.DECISION_PENDING
    assert not SignOff.objects.exists()
    assert not AuditEvent.objects.filter(action="candidate.sign_off").exists()


def test_signer_who_reviewed_or_curated_is_refused(people: Personas, candidate: Candidate) -> None:
    p = people
    to_decision_pending(candidate, p)
    for person in (p.reviewer1, p.curator):
        person.groups.add(*p.approver.groups.all())
        person = type(person).objects.get(pk=person.pk)
        with pytest.raises(PermissionDenied, match="curated or reviewed"):
            services.signoff_create(candidate_id=candidate.pk, by=person, password=PASSWORD, decision="hold")
    for not_approver in (p.reviewer3, p.viewer, p.outsider):
        with pytest.raises(PermissionDenied):
            services.signoff_create(candidate_id=candidate.pk, by=not_approver, password=PASSWORD, decision="hold")
    assert not SignOff.objects.exists()


def test_editing_signed_content_invalidates_the_signature(people: Personas, candidate: Candidate) -> None:
    to_signed_off(candidate, people)
    assert services.signature_check(candidate_id=candidate.pk) is None  # nothing changed yet
    assert signature_status(reload(candidate)).content_unchanged  # type: ignore[union-attr]

    Candidate.objects.filter(pk=candidate.pk).update(rationale="A different rationale")
    status = signature_status(reload(candidate))
    assert status is not None and not status.content_unchanged  # detected at read time

    void = services.signature_check(candidate_id=candidate.pk, by=people.curator)
    assert void is not None and not SignOff.objects.get(pk=void.pk).valid
    assert void.invalidated_reason == "Signed content changed: candidate."
    assert reload(candidate).status == S.DECISION_PENDING
    assert service_trail(candidate)[-1] == (
        "candidate.signature_invalidate",
        "signed_off",
        "decision_pending",
        "curator",
    )

    services.signoff_create(candidate_id=candidate.pk, by=people.approver2, password=PASSWORD, decision="guardrails")
    assert SignOff.objects.filter(candidate=candidate).count() == 2
    assert SignOff.objects.filter(candidate=candidate, valid=True).get().signer == people.approver2


def test_new_evidence_and_condition_status_and_gap_changes(people: Personas, candidate: Candidate) -> None:
    """Conditions' tracking status is not signed content; a new condition or a data gap is."""
    to_signed_off(candidate, people)
    GuardrailCondition.objects.filter(candidate=candidate).update(status="met", resolution_note="done")
    assert services.signature_check(candidate_id=candidate.pk) is None
    DataGap.objects.create(dossier=candidate.dossier, code="DG009", description="Missing PK data", severity="low")
    void = services.signature_check(candidate_id=candidate.pk)
    assert void is not None and void.invalidated_reason == "Signed content changed: data_gaps."


def test_one_valid_signature_per_round_is_a_database_constraint(people: Personas, candidate: Candidate) -> None:
    to_signed_off(candidate, people)
    first = SignOff.objects.get()
    duplicate = {f.name: getattr(first, f.name) for f in SignOff._meta.concrete_fields if f.name != "id"}
    with pytest.raises(IntegrityError), transaction.atomic():
        SignOff.objects.create(**{**duplicate, "signer": people.approver2})
    SignOff.objects.create(**{**duplicate, "valid": False})  # invalid ones may pile up


def test_signers_are_deactivated_never_deleted(people: Personas, candidate: Candidate) -> None:
    to_signed_off(candidate, people)
    with pytest.raises(ProtectedError):
        people.approver.delete()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_approvers_signing_at_once_make_one_signature(people: Personas, candidate: Candidate) -> None:
    to_decision_pending(candidate, people)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def sign(approver_pk: int) -> None:
        from django.contrib.auth.models import User

        try:
            approver = User.objects.get(pk=approver_pk)
            barrier.wait(timeout=10)
            services.signoff_create(candidate_id=candidate.pk, by=approver, password=PASSWORD, decision="guardrails")
            outcomes.append("signed")
        except ValidationError as refused:
            outcomes.append(f"refused: {refused.messages[0]}")
        finally:
            connection.close()

    threads = [threading.Thread(target=sign, args=(u.pk,)) for u in (people.approver, people.approver2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes)[1] == "signed" and sorted(outcomes)[0].startswith("refused: Cannot sign off")
    assert SignOff.objects.filter(candidate=candidate, valid=True).count() == 1
    assert AuditEvent.objects.filter(candidate=candidate, action="candidate.sign_off").count() == 1


# ---------------------------------------------------------------- conditions


def test_waive_is_for_approvers_and_needs_a_justification(people: Personas, candidate: Candidate) -> None:
    to_signed_off(candidate, people)
    condition = candidate.conditions.get()
    with pytest.raises(PermissionDenied):
        services.condition_waive(condition_id=condition.pk, by=people.curator, justification="no")
    with pytest.raises(ValidationError, match="justification"):
        services.condition_waive(condition_id=condition.pk, by=people.approver, justification=" ")
    services.condition_waive(condition_id=condition.pk, by=people.approver, justification="Covered by REMS")
    condition.refresh_from_db()
    assert (condition.status, condition.resolution_note) == ("waived", "Covered by REMS")
    assert reload(candidate).status == S.CLEARED
    with pytest.raises(ValidationError):
        services.condition_mark_met(condition_id=condition.pk, by=people.curator, note="again")


def test_candidate_stays_signed_off_while_a_condition_is_open(people: Personas, candidate: Candidate) -> None:
    GuardrailCondition.objects.create(
        candidate=candidate, title="Pharmacovigilance plan", owner=people.curator, due_date=dt.date(2030, 6, 1)
    )
    to_signed_off(candidate, people)
    first, _second = candidate.conditions.order_by("id")
    owner = make_user("owner")  # not in the market: the condition's owner must still see the candidate
    GuardrailCondition.objects.filter(pk=first.pk).update(owner=owner)
    with pytest.raises(PermissionDenied):
        services.condition_mark_met(condition_id=first.pk, by=owner, note="done")
    services.condition_mark_met(condition_id=first.pk, by=people.curator, note="done")
    assert reload(candidate).status == S.SIGNED_OFF


# ---------------------------------------------------------------- comments, watching, notifications


def test_comment_mentions_and_watching(people: Personas, candidate: Candidate) -> None:
    p = people
    services.watch(candidate_id=candidate.pk, by=p.viewer)
    comment = services.comment_add(
        candidate_id=candidate.pk,
        by=p.curator,
        body="@Reviewer1 and @outsider please look (mail curator@example.org), cc @nobody.",
    )
    assert list(comment.mentions.all()) == [p.reviewer1]  # outsider cannot see India; e-mails are no mention
    reasons = dict(Notification.objects.values_list("recipient__username", "reason"))
    assert reasons == {"reviewer1": "mentioned", "viewer": "comment"}
    assert Watch.objects.filter(candidate=candidate, user=p.curator).exists()

    services.unwatch(candidate_id=candidate.pk, by=p.viewer)
    services.unwatch(candidate_id=candidate.pk, by=p.viewer)
    assert not Watch.objects.filter(user=p.viewer).exists()
    with pytest.raises(PermissionDenied):
        services.watch(candidate_id=candidate.pk, by=p.outsider)


def test_transitions_queue_notifications_in_the_same_transaction(people: Personas, candidate: Candidate) -> None:
    to_decision_pending(candidate, people)
    rows = Notification.objects.select_related("event", "recipient")
    assigned = {n.recipient.username for n in rows if n.reason == "assigned"}
    assert assigned == {"reviewer1", "reviewer2"}
    pending = {n.recipient.username for n in rows if n.event.to_state == "decision_pending"}
    # watchers (curator, reviewer1; reviewer2 acted) and the market's approvers; never the outsider
    assert pending == {"curator", "reviewer1", "approver", "approver2"}


def test_due_date_recorded_on_assignment(people: Personas, candidate: Candidate) -> None:
    to_in_review(candidate, people)
    assert set(ReviewRound.objects.get().assignments.values_list("due_date", flat=True)) == {dt.date(2030, 1, 1)}


# ---------------------------------------------------------------- guardrails as a tracker, and who may sign


def test_guardrails_need_an_owner_and_a_due_date_for_each_open_condition(people: Personas, candidate: Candidate):
    to_decision_pending(candidate, people)
    GuardrailCondition.objects.create(candidate=candidate, title="Pharmacovigilance plan")
    GuardrailCondition.objects.create(candidate=candidate, title="Met already", status="met", resolution_note="ok")
    with pytest.raises(ValidationError) as refused:
        services.signoff_create(candidate_id=candidate.pk, by=people.approver, password=PASSWORD, decision="guardrails")
    assert refused.value.message_dict["decision"] == [
        "Proceed with Guardrails needs an owner and a due date for condition 'Pharmacovigilance plan'."
    ]
    GuardrailCondition.objects.filter(title="Pharmacovigilance plan").update(
        owner=people.curator, due_date=dt.date(2030, 6, 1)
    )
    services.signoff_create(candidate_id=candidate.pk, by=people.approver, password=PASSWORD, decision="guardrails")
    assert reload(candidate).status == S.SIGNED_OFF


@pytest.mark.parametrize("decision", [Decision.HOLD, Decision.RESEARCH, Decision.NO_GO])
def test_only_a_guardrails_decision_is_cleared_by_its_conditions(
    people: Personas, candidate: Candidate, decision: str
) -> None:
    to_decision_pending(candidate, people)
    services.signoff_create(candidate_id=candidate.pk, by=people.approver, password=PASSWORD, decision=decision)
    (condition,) = candidate.conditions.all()
    services.condition_mark_met(condition_id=condition.pk, by=people.curator, note="done anyway")
    assert reload(candidate).status == S.SIGNED_OFF
    assert not AuditEvent.objects.filter(candidate=candidate, action="candidate.clear").exists()


def test_reopened_guardrails_signed_again_with_every_condition_met_is_cleared(
    people: Personas, candidate: Candidate
) -> None:
    p = people
    to_signed_off(candidate, p)
    (condition,) = candidate.conditions.all()
    services.condition_mark_met(condition_id=condition.pk, by=p.curator, note="https://example.org/label")
    assert reload(candidate).status == S.CLEARED
    services.candidate_reopen(candidate_id=candidate.pk, by=p.approver, reason="New label version")
    services.candidate_start_curation(candidate_id=candidate.pk, by=p.curator)
    services.review_assign(candidate_id=candidate.pk, by=p.curator, reviewers=[p.reviewer1, p.reviewer3])
    services.candidate_send_to_review(candidate_id=candidate.pk, by=p.curator)
    vote(candidate, p.reviewer1)
    vote(candidate, p.reviewer3)

    services.signoff_create(candidate_id=candidate.pk, by=p.approver2, password=PASSWORD, decision="guardrails")

    assert reload(candidate).status == S.CLEARED
    assert [row[:3] for row in service_trail(candidate)[-2:]] == [
        ("candidate.sign_off", "decision_pending", "signed_off"),
        ("candidate.clear", "signed_off", "cleared"),
    ]


def test_the_meaning_of_a_signature_follows_from_its_decision(people: Personas, candidate: Candidate) -> None:
    to_decision_pending(candidate, people)
    with pytest.raises(TypeError):
        services.signoff_create(  # type: ignore[call-arg]
            candidate_id=candidate.pk, by=people.approver, password=PASSWORD, decision="hold", meaning="Approved: Go"
        )
    signoff = services.signoff_create(candidate_id=candidate.pk, by=people.approver, password=PASSWORD, decision="hold")
    assert signoff.meaning == "Approved: Hold"


def test_a_signer_without_a_full_name_is_refused(people: Personas, candidate: Candidate) -> None:
    to_decision_pending(candidate, people)
    type(people.approver).objects.filter(pk=people.approver.pk).update(first_name="", last_name=" ")
    approver = type(people.approver).objects.get(pk=people.approver.pk)
    with pytest.raises(ValidationError, match="full name"):
        services.signoff_create(candidate_id=candidate.pk, by=approver, password=PASSWORD, decision="hold")
    assert not SignOff.objects.exists() and reload(candidate).status == S.DECISION_PENDING


def test_who_settled_the_conflict_may_not_sign_it(people: Personas, candidate: Candidate) -> None:
    p = people
    to_in_review(candidate, p)
    vote(candidate, p.reviewer1, Decision.GUARDRAILS)
    vote(candidate, p.reviewer2, Decision.HOLD)
    services.conflict_resolve(
        candidate_id=candidate.pk, by=p.approver, decision="hold", level="L2", stage="S2", note="Hold for now"
    )
    with pytest.raises(PermissionDenied, match="settled its conflict"):
        services.signoff_create(candidate_id=candidate.pk, by=p.approver, password=PASSWORD, decision="hold")
    assert "sign_off" not in allowed_actions(p.approver, reload(candidate))
    services.signoff_create(candidate_id=candidate.pk, by=p.approver2, password=PASSWORD, decision="hold")


def test_conditions_of_changed_signed_content_are_not_tracked(people: Personas, candidate: Candidate) -> None:
    """Before the queued signature check has run, the condition services refuse on their own."""
    to_signed_off(candidate, people)
    (condition,) = candidate.conditions.all()
    Candidate.objects.filter(pk=candidate.pk).update(rationale="Edited after signing")
    with pytest.raises(ValidationError, match="changed after it was signed"):
        services.condition_mark_met(condition_id=condition.pk, by=people.curator, note="done")
    with pytest.raises(ValidationError, match="changed after it was signed"):
        services.condition_waive(condition_id=condition.pk, by=people.approver, justification="not needed")
    assert GuardrailCondition.objects.get(pk=condition.pk).status == "open"


def test_hourly_sweep_voids_signatures_of_content_changed_behind_the_services_back(
    people: Personas, candidate: Candidate
) -> None:
    to_signed_off(candidate, people)
    assert services.signatures_sweep() == []
    DataGap.objects.create(dossier=candidate.dossier, code="DG010", description="No PK data", severity="low")
    (voided,) = services.signatures_sweep()
    assert voided.candidate_id == candidate.pk and reload(candidate).status == S.DECISION_PENDING
    assert services.signatures_sweep() == []
