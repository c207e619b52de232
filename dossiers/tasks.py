"""Celery tasks that keep evidence current: load by id, call one service, own the retries.

Refresh tasks are sent to the `sources` queue (external APIs, rate-limited inside the task) with late acks:
a worker killed mid-refresh leaves its message unacknowledged, Redis redelivers it, and the run key
(request id, subject, source) makes the second delivery finish only the unfinished runs.

No refresh task is sent with a countdown or ETA. A worker takes an ETA message at once and holds it
unacknowledged until it is due and done; Redis hands it to another worker when the visibility timeout
(2 × CELERY_TASK_TIME_LIMIT) passes first, which happened to the nightly batch: at ClinicalTrials.gov's
50 requests/min a thousand candidates take longer than that. Instead:
- a button press or API call sends its two tasks (the drug's, the candidate's) at once;
- the nightly job (`refresh_open_candidates`) only creates the runs; the dispatcher
  (`refresh_dispatch`, beat every EVIDENCE_REFRESH_DISPATCH_INTERVAL seconds, and once when the nightly
  request commits) sends the waiting ones in run order, keeping at most EVIDENCE_REFRESH_BATCH tasks
  sent and unfinished. Messages so wait in the broker's queue, not in a worker, for about one batch's
  time, and a curator's button press is queued behind one batch, not behind the whole night;
- the shared rate limiter paces the requests inside the tasks.
A request whose tasks could not be sent (broker down) is left to the dispatcher.
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
    """Send the tasks of a committed request now, drugs first, without countdown (see the module docstring).

    When the broker cannot be reached the request's runs wait for the dispatcher instead of failing the page.
    """
    jobs: list[tuple[Any, int]] = [(refresh_drug, d) for d in request.drug_ids]
    jobs += [(refresh_candidate, c) for c in request.candidate_ids]
    try:
        for task, subject_id in jobs:
            task.apply_async(args=[subject_id, str(request.request_id)], queue=SOURCES_QUEUE)
    except Exception:
        if current_app.conf.task_always_eager:
            raise  # an inline task failed: nothing was lost in a broker
        log.exception("refresh request %s: tasks not sent; the dispatcher sends them", request.request_id)
        refresh.refresh_request_release(request)


@shared_task(name="dossiers.refresh_runs_sweep", acks_late=True, reject_on_worker_lost=True)
def refresh_runs_sweep() -> int:
    """Beat, every minute: runs left "running" or queued by a lost worker or message end as errors."""
    return refresh.refresh_runs_sweep()


@shared_task(name="dossiers.refresh_dispatch", acks_late=True, reject_on_worker_lost=True)
def refresh_dispatch() -> int:
    """Beat: send the tasks of runs waiting for the dispatcher, up to EVIDENCE_REFRESH_BATCH unfinished."""
    sent = 0
    while True:
        subjects = refresh.refresh_dispatch_claim(batch=settings.EVIDENCE_REFRESH_BATCH)
        for number, subject in enumerate(subjects):
            task = refresh_candidate if subject.candidate_id else refresh_drug
            args = (subject.candidate_id or subject.drug_id, str(subject.request_id))
            try:
                task.apply_async(args=args, queue=SOURCES_QUEUE)
            except Exception:
                if current_app.conf.task_always_eager:
                    raise
                refresh.refresh_dispatch_release(subjects[number:])
                raise
        sent += len(subjects)
        # Inline (no broker) each task has run by now, so the next batch has room: send until none waits.
        if not subjects or not current_app.conf.task_always_eager:
            return sent


@shared_task(name="dossiers.evidence_alerts_sweep", acks_late=True, reject_on_worker_lost=True)
def evidence_alerts_sweep() -> int:
    """Beat, every EVIDENCE_ALERT_GRACE seconds: send again the alerts of runs whose significant changes
    nobody was told about (their alert was lost after the run's commit); returns how many runs."""
    run_ids = refresh.unnotified_alert_runs()
    for run_id in run_ids:
        send_evidence_alert(run_id)
    if run_ids:
        log.warning("evidence alerts sweep: sent again for runs %s", run_ids)
    return len(run_ids)


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
