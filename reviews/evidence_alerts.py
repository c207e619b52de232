"""Tell the approver and the watchers of a signed-off candidate that its evidence changed significantly.

The dossiers side finds the changes (`dossiers.services.refresh`) and, after its transaction commits,
sends this task by name (`reviews.evidence_changes_notify`, run id): dossiers never imports reviews.
Per candidate, the run's unnotified significant `EvidenceChange` rows become one `AuditEvent`
("evidence.changed") and one `Notification` (reason `evidence_changed`) per approver who signed the
valid sign-off and per watcher. The change rows are locked and stamped `notified_at` in the same
transaction, so a redelivered task finds nothing left to tell.
"""

from __future__ import annotations

from collections import defaultdict

from celery import shared_task
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from dossiers.models import Candidate, EvidenceChange, RefreshRun
from reviews.models import AuditEvent, Notification, SignOff
from reviews.services import _audit, _notify, _watchers


@transaction.atomic
def evidence_changes_notify(*, run_id: int) -> list[AuditEvent]:
    """Audit and queue notifications for the run's significant changes on signed-off candidates."""
    changes = list(
        EvidenceChange.objects.select_for_update(of=("self",))
        .filter(refresh_run_id=run_id, significant=True, notified_at__isnull=True)
        .select_related("candidate__dossier__market")
        .order_by("id")
    )
    by_candidate: dict[int, list[EvidenceChange]] = defaultdict(list)
    for change in changes:
        by_candidate[change.candidate_id].append(change)
    events = []
    for candidate_changes in by_candidate.values():
        candidate = candidate_changes[0].candidate
        if candidate.status == Candidate.Status.SIGNED_OFF:
            events.append(_tell(candidate, candidate_changes, run_id))
    EvidenceChange.objects.filter(pk__in=[c.pk for c in changes]).update(notified_at=timezone.now())
    return events


def _tell(candidate: Candidate, changes: list[EvidenceChange], run_id: int) -> AuditEvent:
    kinds = sorted({c.get_kind_display() for c in changes})
    run = RefreshRun.objects.get(pk=run_id)
    event = _audit(
        by=None,
        candidate=candidate,
        action="evidence.changed",
        obj=run,
        reason=f"{run.get_source_display()} refresh: {', '.join(kinds)}",
        changes={"evidence": [None, [{"kind": c.kind, **c.detail} for c in changes]]},
    )
    _notify(event, [*_approvers(candidate), *_watchers(candidate)], Notification.Reason.EVIDENCE)
    return event


def _approvers(candidate: Candidate) -> list[User]:
    signoffs = SignOff.objects.filter(candidate=candidate, valid=True).select_related("signer")
    return [signoff.signer for signoff in signoffs]


@shared_task(name="reviews.evidence_changes_notify", acks_late=True, reject_on_worker_lost=True)
def evidence_changes_notify_task(run_id: int) -> int:
    """Celery entry point for `evidence_changes_notify`; returns how many audit events it wrote."""
    return len(evidence_changes_notify(run_id=run_id))
