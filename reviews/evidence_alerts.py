"""Tell the approver and the watchers of a signed-off candidate that its evidence changed significantly.

"Signed off" means signed when the refresh request that found the change began: the same request may
also void the signature (its label resolves a data gap, which is signed content), possibly before this
run found its change, and that must not swallow the alert.

The dossiers side finds the changes (`dossiers.services.refresh`) and, after its transaction commits,
sends this task by name (`reviews.evidence_changes_notify`, run id): dossiers never imports reviews.
Per candidate, the run's unnotified significant `EvidenceChange` rows become one `AuditEvent`
("evidence.changed") and one `Notification` (reason `evidence_changed`) per approver who signed the
valid sign-off and per watcher. The change rows are locked and stamped `notified_at` in the same
transaction, so a redelivered task finds nothing left to tell.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from celery import shared_task
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Min, Q
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
    started = _request_start(run_id)
    for candidate_changes in by_candidate.values():
        candidate = candidate_changes[0].candidate
        signers = _signers_at(candidate, min([started, *(c.created_at for c in candidate_changes)]))
        if signers:
            events.append(_tell(candidate, candidate_changes, run_id, signers))
    EvidenceChange.objects.filter(pk__in=[c.pk for c in changes]).update(notified_at=timezone.now())
    return events


def _tell(candidate: Candidate, changes: list[EvidenceChange], run_id: int, signers: list[User]) -> AuditEvent:
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
    _notify(event, [*signers, *_watchers(candidate)], Notification.Reason.EVIDENCE)
    return event


def _request_start(run_id: int) -> datetime:
    """When the refresh request of the run was made: its earliest run."""
    request_id = RefreshRun.objects.filter(pk=run_id).values("request_id")
    earliest = RefreshRun.objects.filter(request_id__in=request_id).aggregate(at=Min("created_at"))["at"]
    return earliest or timezone.now()


def _signers_at(candidate: Candidate, moment: datetime) -> list[User]:
    """Who signed the open round's decision that stood at `moment` (valid then, perhaps voided since)."""
    signoffs = SignOff.objects.filter(candidate=candidate, round__closed_at__isnull=True, signed_at__lte=moment)
    standing = signoffs.filter(Q(valid=True) | Q(invalidated_at__gte=moment)).select_related("signer")
    return [signoff.signer for signoff in standing]


@shared_task(name="reviews.evidence_changes_notify", acks_late=True, reject_on_worker_lost=True)
def evidence_changes_notify_task(run_id: int) -> int:
    """Celery entry point for `evidence_changes_notify`; returns how many audit events it wrote."""
    return len(evidence_changes_notify(run_id=run_id))
