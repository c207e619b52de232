"""Celery tasks that keep evidence current: load by id, call one service, own the retries.

Refresh tasks are sent to the `sources` queue (external APIs, rate-limited inside the task) with late acks:
a worker killed mid-refresh leaves its message unacknowledged, Redis redelivers it, and the run key
(request id, subject, source) makes the second delivery finish only the unfinished runs.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from celery import Task, current_app, shared_task
from django.conf import settings
from django.db import OperationalError
from django.utils import timezone

from dossiers.models import Candidate, Drug
from dossiers.services import refresh

log = logging.getLogger(__name__)
SOURCES_QUEUE = "sources"
EVIDENCE_ALERT_TASK = "reviews.evidence_changes_notify"
EVIDENCE_ALERT_MODULE = "reviews.evidence_alerts"
SIGNATURE_CHECK_TASK = "reviews.signatures_check"
SIGNATURE_CHECK_MODULE = "reviews.tasks"


def _request_id(task: Task, request_id: str | None) -> uuid.UUID:
    # Without an explicit request the task id is the key: a redelivered message keeps its id.
    return uuid.UUID(request_id) if request_id else uuid.uuid5(refresh.NIGHTLY_NAMESPACE, f"task:{task.request.id}")


@shared_task(
    bind=True,
    name="dossiers.refresh_candidate",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def refresh_candidate(self: Task, candidate_id: int, request_id: str | None = None) -> list[str]:
    """Refresh one candidate's trials and literature; returns the run statuses (for logs)."""
    try:
        runs = refresh.candidate_refresh(candidate_id=candidate_id, request_id=_request_id(self, request_id))
    except Candidate.DoesNotExist:
        log.warning("refresh_candidate: candidate %s no longer exists", candidate_id)
        return []
    return [f"{r.source}:{r.status}" for r in runs]


@shared_task(
    bind=True,
    name="dossiers.refresh_drug",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def refresh_drug(self: Task, drug_id: int, request_id: str | None = None) -> list[str]:
    """Refresh one drug's RxNorm id and label; returns the run statuses (for logs)."""
    try:
        runs = refresh.drug_refresh(drug_id=drug_id, request_id=_request_id(self, request_id))
    except Drug.DoesNotExist:
        log.warning("refresh_drug: drug %s no longer exists", drug_id)
        return []
    return [f"{r.source}:{r.status}" for r in runs]


@shared_task(name="dossiers.refresh_open_candidates", acks_late=True, reject_on_worker_lost=True)
def refresh_open_candidates(day: str | None = None) -> int:
    """Nightly (beat): queue every open candidate, staggered; the same day twice queues nothing new."""
    request = refresh.nightly_refresh_request(day=day or timezone.localdate().isoformat())
    return len(request.candidate_ids)


def enqueue_refresh(request: refresh.RefreshRequest) -> None:
    """Send the tasks of a committed request, spread evenly over EVIDENCE_REFRESH_SPREAD seconds at most.

    The spread stays below the broker's visibility timeout: a longer countdown would be redelivered
    (and run twice) on Redis before it is due.
    """
    drugs = [(refresh_drug, d) for d in request.drug_ids]
    candidates = [(refresh_candidate, c) for c in request.candidate_ids]
    jobs: list[tuple[Any, int]] = drugs + candidates
    step = min(settings.EVIDENCE_REFRESH_STAGGER, settings.EVIDENCE_REFRESH_SPREAD / max(len(jobs), 1))
    for number, (task, subject_id) in enumerate(jobs):
        countdown = round(number * step, 3) if len(jobs) > 1 else 0
        task.apply_async(args=[subject_id, str(request.request_id)], countdown=countdown or None, queue=SOURCES_QUEUE)


def send_evidence_alert(run_id: int) -> None:
    """Hand a run with significant changes to the reviews side by task name (dossiers never imports reviews)."""
    _send_to_reviews(EVIDENCE_ALERT_TASK, EVIDENCE_ALERT_MODULE, [run_id], queue=settings.EVIDENCE_ALERT_QUEUE)


def send_signature_check(candidate_ids: list[int], by_id: int | None) -> None:
    """Ask the reviews side to void signatures whose signed content changed (see services.signed_content)."""
    _send_to_reviews(SIGNATURE_CHECK_TASK, SIGNATURE_CHECK_MODULE, [candidate_ids, by_id])


def _send_to_reviews(name: str, module: str, args: list[Any], *, queue: str | None = None) -> None:
    app = current_app
    if app.conf.task_always_eager:
        # send_task ignores eager mode; run it here as `apply` would (the module registers the task on import)
        app.loader.import_task_module(module)
        app.tasks[name].apply(args=tuple(args), throw=True)
        return
    app.send_task(name, args=args, queue=queue)
