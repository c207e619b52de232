"""The audit trail: append-only on PostgreSQL, trigger-captured direct writes, the candidate timeline."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, transaction

from dossiers.models import Candidate, DataGap
from reviews import services
from reviews.models import AuditEvent
from reviews.selectors import audit_events_for
from tests.reviews.conftest import Personas, to_decision_pending


def test_timeline_holds_candidate_and_dossier_events(people: Personas, candidate: Candidate) -> None:
    services.candidate_triage(candidate_id=candidate.pk, by=people.curator)
    other = Candidate.objects.create(dossier=candidate.dossier, disease="Other disease")
    services.candidate_triage(candidate_id=other.pk, by=people.curator)
    AuditEvent.objects.create(dossier_id=candidate.dossier_id, object_type="dossiers.datagap", action="row.insert")

    actions = [(e.action, e.candidate_id) for e in audit_events_for(candidate)]
    assert ("candidate.triage", candidate.pk) in actions
    assert ("row.insert", None) in actions  # dossier-level event shown on each of its candidates
    assert ("candidate.triage", other.pk) not in actions


def test_review_submit_audit_reveals_no_vote(people: Personas, candidate: Candidate) -> None:
    to_decision_pending(candidate, people)
    for event in AuditEvent.objects.filter(action="review.submit"):
        assert event.changes == {} and event.reason == ""


@pytest.mark.postgres
@pytest.mark.parametrize(
    "statement", ["UPDATE reviews_auditevent SET action = 'forged'", "DELETE FROM reviews_auditevent"]
)
def test_raw_update_or_delete_of_audit_rows_fails(people: Personas, candidate: Candidate, statement: str) -> None:
    services.candidate_triage(candidate_id=candidate.pk, by=people.curator)
    with (
        pytest.raises(DatabaseError, match="Cannot update or delete rows from reviews_auditevent"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)
    assert AuditEvent.objects.filter(action="candidate.triage").count() == 1


@pytest.mark.postgres
def test_orm_update_and_delete_of_audit_rows_fail(people: Personas, candidate: Candidate) -> None:
    services.candidate_triage(candidate_id=candidate.pk, by=people.curator)
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.update(reason="rewritten")
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.all().delete()


@pytest.mark.postgres
def test_queryset_update_on_candidate_is_captured_with_before_and_after(people: Personas, candidate: Candidate) -> None:
    Candidate.objects.filter(pk=candidate.pk).update(summary="Edited in bulk", evidence_level="L3")
    event = AuditEvent.objects.filter(candidate=candidate, action="row.update").get()
    assert event.changes == {"summary": ["", "Edited in bulk"], "evidence_level": ["L5", "L3"]}
    assert (event.object_type, event.object_id, event.actor) == ("dossiers.candidate", str(candidate.pk), None)
    assert event.dossier_id == candidate.dossier_id


@pytest.mark.postgres
def test_direct_writes_name_their_actor_and_reason(people: Personas, candidate: Candidate) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('reviews.actor_id', %s, true), set_config('reviews.reason', 'typo', true)",
            [str(people.curator.pk)],
        )
        candidate.title = "Lenalidomide: From myeloma to MDS"
        candidate.save()
    event = AuditEvent.objects.get(candidate=candidate, action="row.update")
    assert (event.actor, event.reason) == (people.curator, "typo")
    assert event.changes == {"title": ["", "Lenalidomide: From myeloma to MDS"]}


@pytest.mark.postgres
def test_evidence_and_dossier_edits_are_captured(people: Personas, candidate: Candidate) -> None:
    gap = DataGap.objects.create(dossier=candidate.dossier, code="DG001", description="No label", severity="blocking")
    gap_pk = gap.pk
    DataGap.objects.filter(pk=gap_pk).update(status="resolved")
    gap.delete()
    events = AuditEvent.objects.filter(object_type="dossiers.datagap", object_id=str(gap_pk)).order_by("id")
    assert [e.action for e in events] == ["row.insert", "row.update", "row.delete"]
    assert events[1].changes == {"status": ["open", "resolved"]}
    assert (events[1].from_state, events[1].to_state) == ("open", "resolved")
    assert all(e.dossier_id == candidate.dossier_id for e in events)
    assert audit_events_for(candidate).filter(object_type="dossiers.datagap").count() == 3


@pytest.mark.postgres
def test_service_writes_are_audited_once_not_twice(people: Personas, candidate: Candidate) -> None:
    before = AuditEvent.objects.filter(action__startswith="row.").count()
    to_decision_pending(candidate, people)
    assert AuditEvent.objects.filter(action__startswith="row.").count() == before
    # and the trigger is back on once the service's transaction part is over
    Candidate.objects.filter(pk=candidate.pk).update(summary="after")
    assert AuditEvent.objects.filter(action="row.update", candidate=candidate).count() == 1


@pytest.mark.postgres
def test_a_failed_service_leaves_the_trigger_on(people: Personas, candidate: Candidate) -> None:
    with pytest.raises(ValidationError, match="Cannot sign off"):
        services.signoff_create(candidate_id=candidate.pk, by=people.approver, password="x", decision="hold")
    Candidate.objects.filter(pk=candidate.pk).update(summary="after a failure")
    assert AuditEvent.objects.filter(action="row.update", candidate=candidate).count() == 1
