"""Refresh a candidate's or a drug's evidence from the public sources: diffs, not overwrites.

One refresh request (a button press, an API call or the nightly batch) has a `request_id`; each
(subject, source) pair of it is one `RefreshRun`, the query-log row. A run is fetched outside any
transaction, then applied in one transaction that locks the run row and skips it when it is already
done: a task redelivered after a worker died re-runs an unfinished run and never applies one twice.

What a refresh writes:
- Trials (ClinicalTrials.gov, by the candidate's disease and drug) and papers (PubMed, drug AND
  disease) it has not seen for the candidate arrive as SUGGESTED links with provenance (source, query
  URL, retrieved_at). Links a curator included or excluded are never touched or deleted. The drug is
  searched by any of its names (`search_names`: RxNorm's, its own, its synonyms), normalised by RxNorm
  first; the run records the query as sent.
- A known trial whose registry fields changed (status, why stopped, phase, enrollment, results posted,
  completion date, last update) is updated and every candidate linked to it gets an `EvidenceChange`.
  A blank field the registry fills is filled silently; curated text (title, summary) is never replaced.
- The drug label (openFDA) becomes SafetyStatement rows per dossier of the drug (boxed warning,
  contraindications, warnings, drug interactions), kept apart from imported statements, and resolves the open data gap
  about warnings and contraindications. RxNorm fills or corrects `Drug.rxcui` and `Drug.rxnorm_name`.
- Significant changes: a new Phase 3 trial, a trial stopped for safety, a new boxed warning (a boxed
  warning that appears or changes after the label was first retrieved).
A malformed, failed or rate-limited query marks that run "error" (or "not queried" when no request of it
was sent) with its message; nothing stored is changed by it. A query that read fewer records than the
source reported (a page cap: CLINICALTRIALS_MAX_PAGES, PUBMED_MAX_RECORDS; or fewer records than asked
for) applies what it read and ends "partial", its message saying "read N of M" and why: never "success".

Database writes name the run in `reviews.reason` (and the acting curator in `reviews.actor_id`), so
the PostgreSQL audit triggers record them without this app importing `reviews`.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from dossiers.evidence_level import evidence_level_compute, trial_phase_numbers
from dossiers.models import (
    Candidate,
    CandidatePublication,
    CandidateTrial,
    CandidateVisit,
    ClinicalTrial,
    CurationStatus,
    DataGap,
    Drug,
    EvidenceChange,
    Provenance,
    Publication,
    RefreshRun,
    SafetyStatement,
)
from dossiers.permissions import can_curate
from dossiers.services.signed_content import dossier_content_changed, signed_content_changed
from dossiers.sources import clinicaltrials, openfda, pubmed, rxnorm, transport
from dossiers.sources.clinicaltrials import TrialRecord
from dossiers.sources.errors import RateLimitTimeout, SourceError
from dossiers.sources.openfda import DrugLabel
from dossiers.sources.pubmed import ArticleSummary
from webhooks.services import webhook_event_publish

log = logging.getLogger(__name__)
Source = RefreshRun.Source
RunStatus = RefreshRun.Status
Kind = EvidenceChange.Kind
CANDIDATE_SOURCES = (Source.CLINICALTRIALS, Source.PUBMED)
DRUG_SOURCES = (Source.RXNAV, Source.OPENFDA)
SOURCE_LABELS = {
    Source.CLINICALTRIALS: "ClinicalTrials.gov",
    Source.PUBMED: "PubMed",
    Source.OPENFDA: "openFDA",
    Source.RXNAV: "RxNorm",
}
# Candidates the nightly refresh keeps current: all but those set aside.
CLOSED_STATUSES = (Candidate.Status.DEPRIORITIZED, Candidate.Status.CLEARED)
TRIAL_PAGE_SIZE = 100
# Registry fields whose change is news; the others are only filled when blank.
TRIAL_TRACKED = ("status", "why_stopped", "phase", "enrollment", "has_results", "completion_date", "last_update")
TRIAL_FILLED = ("title", "start_date", "conditions", "interventions", "brief_summary")
# Registry fields always taken as the registry has them (no news row): the design, which grades the level.
TRIAL_SYNCED = ("allocation",)
# Fields the evidence level reads (evidence_level.trial_level): a change regrades the trial's candidates.
TRIAL_GRADED = frozenset({"phase", "status", "allocation"})
PUBLICATION_FILLED = ("year", "study_type", "journal", "title", "authors", "doi", "abstract")
# PubMed publication types, most telling first: the first one present becomes the study type.
STUDY_TYPES = (
    "Meta-Analysis",
    "Systematic Review",
    "Randomized Controlled Trial",
    "Clinical Trial, Phase III",
    "Clinical Trial, Phase II",
    "Clinical Trial, Phase I",
    "Controlled Clinical Trial",
    "Clinical Trial",
    "Observational Study",
    "Multicenter Study",
    "Case Reports",
    "Review",
)
GAP_WORDS = ("warning", "contraindication")
STATEMENT_KINDS = (
    (SafetyStatement.Kind.BOXED_WARNING, "boxed_warning"),
    (SafetyStatement.Kind.CONTRAINDICATION, "contraindications"),
    (SafetyStatement.Kind.WARNING, "warnings_and_cautions"),
    (SafetyStatement.Kind.INTERACTION, "drug_interactions"),
)
MAX_WEBHOOK_CHANGES = 100
MAX_SYNONYMS = 4
# Failures after which nothing can be written: the task's autoretry runs the run again.
DB_LOST = (OperationalError, InterfaceError)
# Raised again once the run is recorded: the task must stop (time limit) or retry (database).
RERAISED = (SoftTimeLimitExceeded, *DB_LOST)
# Failures that happen before a request leaves: "not queried" when no request of the run was sent.
NOT_SENT = (RateLimitTimeout,)
NIGHTLY_NAMESPACE = uuid.UUID("7f6d3c52-52a4-4c5e-9a39-2f0b7cbb9e11")


# ---------------------------------------------------------------- requests


@dataclass(frozen=True)
class RefreshRequest:
    """A refresh that was asked for: its id and the tasks to send once the runs are committed."""

    request_id: uuid.UUID
    candidate_ids: list[int]
    drug_ids: list[int]


def _pending_runs(
    request_id: uuid.UUID, candidates: Sequence[Candidate], by: User | None, *, send_now: bool = True
) -> RefreshRequest:
    """Create the request's runs, drugs first (the dispatcher sends in id order: names are normalised first).

    `send_now` runs are marked sent at once (their tasks go on commit); the others wait for the dispatcher.
    """
    drug_ids = sorted({c.dossier.drug_id for c in candidates})
    sent = timezone.now() if send_now else None
    rows = [
        RefreshRun(request_id=request_id, drug_id=d, source=s, requested_by=by, enqueued_at=sent)
        for d in drug_ids
        for s in DRUG_SOURCES
    ]
    rows += [
        RefreshRun(request_id=request_id, candidate=c, source=s, requested_by=by, enqueued_at=sent)
        for c in candidates
        for s in CANDIDATE_SOURCES
    ]
    RefreshRun.objects.bulk_create(rows, ignore_conflicts=True)
    return RefreshRequest(request_id=request_id, candidate_ids=[c.pk for c in candidates], drug_ids=drug_ids)


@transaction.atomic
def candidate_refresh_request(*, candidate_id: int, by: User) -> RefreshRequest:
    """Queue a refresh of one candidate and its drug for a curator of its market; a running one is reused."""
    candidate = _lock_candidate(candidate_id)
    if not can_curate(by, candidate.dossier.market):
        raise PermissionDenied("Only a curator of this market can refresh its evidence.")
    # A refresh in progress is reused; one whose worker is gone (the sweep will say so) is not.
    busy = RefreshRun.objects.filter(_live_runs(), candidate=candidate).order_by("-created_at").first()
    if busy is not None:
        return RefreshRequest(request_id=busy.request_id, candidate_ids=[], drug_ids=[])
    request = _pending_runs(uuid.uuid4(), [candidate], by)
    transaction.on_commit(lambda: _enqueue(request))
    return request


@transaction.atomic
def candidates_refresh_request(*, candidate_ids: Sequence[int], by: User | None = None) -> RefreshRequest:
    """Queue one refresh request over the given candidates and their drugs (trusted callers: jobs, benchmarks)."""
    candidates = list(Candidate.objects.filter(pk__in=candidate_ids).select_related("dossier").order_by("id"))
    request = _pending_runs(uuid.uuid4(), candidates, by)
    transaction.on_commit(lambda: _enqueue(request))
    return request


@transaction.atomic
def nightly_refresh_request(*, day: str) -> RefreshRequest:
    """Queue a refresh of every open candidate; the same `day` always gives the same request (idempotent).

    Its runs wait for the dispatcher (`refresh_dispatch`), which sends them a batch at a time; the first
    batch goes when this commits.
    """
    request_id = uuid.uuid5(NIGHTLY_NAMESPACE, f"nightly:{day}")
    candidates = list(Candidate.objects.exclude(status__in=CLOSED_STATUSES).select_related("dossier").order_by("id"))
    already = set(
        RefreshRun.objects.filter(request_id=request_id, candidate__isnull=False).values_list("candidate_id", flat=True)
    )
    request = _pending_runs(request_id, [c for c in candidates if c.pk not in already], None, send_now=False)
    transaction.on_commit(_dispatch)
    return request


def _enqueue(request: RefreshRequest) -> None:
    from dossiers.tasks import enqueue_refresh  # tasks import this module; the import is deferred

    enqueue_refresh(request)


def _dispatch() -> None:
    from dossiers.tasks import refresh_dispatch

    refresh_dispatch.delay()


# ---------------------------------------------------------------- lost runs

LOST = "lost: "


def is_lost(run: RefreshRun) -> bool:
    """The sweep ended this run because no worker was working on it (see `refresh_runs_sweep`)."""
    return run.status == RunStatus.ERROR and run.error.startswith(LOST)


def _live_runs() -> Q:
    """Unfinished runs a worker may still be working on or is about to take."""
    now = timezone.now()
    return Q(
        status=RunStatus.RUNNING, started_at__gte=now - timedelta(seconds=settings.EVIDENCE_REFRESH_RUN_LIMIT)
    ) | Q(status=RunStatus.PENDING, enqueued_at__gte=now - timedelta(seconds=settings.EVIDENCE_REFRESH_QUEUE_LIMIT))


def refresh_runs_sweep() -> int:
    """End, as errors, the runs no worker is working on any more; return how many (beat, every minute).

    - "running" for longer than EVIDENCE_REFRESH_RUN_LIMIT (the task time limit and a margin): the task was
      killed at its hard time limit or its worker died;
    - "pending" with its task sent longer than EVIDENCE_REFRESH_QUEUE_LIMIT ago (the broker's visibility
      timeout, a task's time and a margin): the message was lost.
    Runs waiting for the dispatcher (task not sent yet) are left alone. The page then stops polling and a new
    press of the button starts a new refresh. Such a run applied nothing: if its task arrives after all (a
    redelivery), it runs.
    """
    now = timezone.now()
    run_limit, queue_limit = settings.EVIDENCE_REFRESH_RUN_LIMIT, settings.EVIDENCE_REFRESH_QUEUE_LIMIT
    running = RefreshRun.objects.filter(
        status=RunStatus.RUNNING, started_at__lt=now - timedelta(seconds=run_limit)
    ).update(
        status=RunStatus.ERROR,
        finished_at=now,
        error=f"{LOST}worker lost — no result {run_limit} s after the query started (task time limit "
        f"{settings.CELERY_TASK_TIME_LIMIT} s): its worker was killed or died. Refresh again.",
    )
    queued = RefreshRun.objects.filter(
        status=RunStatus.PENDING, enqueued_at__lt=now - timedelta(seconds=queue_limit)
    ).update(
        status=RunStatus.ERROR,
        finished_at=now,
        error=f"{LOST}task lost — sent {queue_limit} s ago and never started: no worker took it. Refresh again.",
    )
    if running or queued:
        log.warning("refresh sweep: %s running and %s queued runs were lost", running, queued)
    return running + queued


# ---------------------------------------------------------------- dispatch


@dataclass(frozen=True)
class Subject:
    """One task to send: a candidate's or a drug's runs of one request."""

    request_id: uuid.UUID
    candidate_id: int | None
    drug_id: int | None


UNFINISHED = (RunStatus.PENDING, RunStatus.RUNNING)
# A candidate counts as refreshed when each query ended so: a partial run applied what it read.
REFRESHED = (RunStatus.SUCCESS, RunStatus.EMPTY, RunStatus.PARTIAL)


def refresh_dispatch_claim(*, batch: int) -> list[Subject]:
    """Mark the next subjects waiting for the dispatcher as sent, keeping at most `batch` sent and unfinished.

    Oldest runs first (a request's drugs before its candidates). Rows are locked with SKIP LOCKED, so two
    dispatchers never claim the same subject. The caller sends a task per subject (and calls
    `refresh_dispatch_release` for those it could not send).
    """
    with transaction.atomic():
        in_flight = (
            RefreshRun.objects.filter(status__in=UNFINISHED, enqueued_at__isnull=False)
            .order_by()  # no default ordering columns in the DISTINCT
            .values("request_id", "candidate_id", "drug_id")
            .distinct()
            .count()
        )
        room = batch - in_flight
        if room <= 0:
            return []
        waiting = (
            RefreshRun.objects.select_for_update(skip_locked=True)
            .filter(status=RunStatus.PENDING, enqueued_at__isnull=True)
            .order_by("id")
            .values_list("request_id", "candidate_id", "drug_id")[: room * max(len(CANDIDATE_SOURCES), 2)]
        )
        subjects = list(dict.fromkeys(Subject(*row) for row in waiting))[:room]
        if subjects:
            _subject_runs(subjects).filter(enqueued_at__isnull=True).update(enqueued_at=timezone.now())
        return subjects


def refresh_dispatch_release(subjects: Sequence[Subject]) -> None:
    """Put subjects whose task could not be sent back in the dispatcher's queue."""
    if subjects:
        _subject_runs(subjects).filter(status=RunStatus.PENDING).update(enqueued_at=None)


def refresh_request_release(request: RefreshRequest) -> None:
    """A request whose tasks could not be sent waits for the dispatcher instead."""
    RefreshRun.objects.filter(request_id=request.request_id, status=RunStatus.PENDING).update(enqueued_at=None)


def _subject_runs(subjects: Sequence[Subject]) -> Any:
    match = Q()
    for subject in subjects:
        match |= Q(request_id=subject.request_id, candidate_id=subject.candidate_id, drug_id=subject.drug_id)
    return RefreshRun.objects.filter(match)


def _lock_candidate(candidate_id: int) -> Candidate:
    try:
        return Candidate.objects.select_for_update(of=("self",)).select_related("dossier__market").get(pk=candidate_id)
    except Candidate.DoesNotExist:
        raise ValidationError(f"Candidate {candidate_id} does not exist.") from None


# ---------------------------------------------------------------- runs


@dataclass
class Outcome:
    """What applying one fetched answer did: counts, the changes to record, other candidates to regrade."""

    total_hits: int | None
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    changes: list[EvidenceChange] = field(default_factory=list)
    regrade: set[int] = field(default_factory=set)


@dataclass(frozen=True)
class Fetched:
    """A source's answer: the query URL, its parameters, the reported total and the parsed records.

    `read` counts the records read; `partial` says why not every record the source reported was read
    (a page cap, fewer records than asked for), "" when nothing is missing.
    """

    query: str
    params: dict[str, Any]
    total_hits: int | None
    records: Any
    read: int | None = None
    partial: str = ""


@dataclass(frozen=True)
class Job:
    """One source query of a refresh: what it asks (logged before it is sent), how to fetch and apply it."""

    source: str
    query: str
    params: dict[str, Any]
    fetch: Callable[[], Fetched]
    apply: Callable[[RefreshRun, Fetched], Outcome]


def _claim(request_id: uuid.UUID, job: Job, *, candidate: Candidate | None, drug: Drug | None) -> RefreshRun | None:
    """Mark the run of (request, subject, source) running; None when a finished run already exists.

    A run the sweep declared lost applied nothing, so a task that arrives after all (redelivered) runs it.
    """
    with transaction.atomic():
        run, _ = RefreshRun.objects.select_for_update().get_or_create(
            request_id=request_id, source=job.source, candidate=candidate, drug=drug
        )
        if run.is_done and not is_lost(run):
            return None
        run.status, run.started_at, run.error = RunStatus.RUNNING, timezone.now(), ""
        run.query, run.params = job.query, job.params
        run.save(update_fields=["status", "started_at", "error", "query", "params"])
        return run


def _finish(run: RefreshRun, status: str, *, error: str = "", fetched: Fetched | None = None) -> None:
    run.status, run.error, run.finished_at = status, error, timezone.now()
    if fetched is not None:
        run.query, run.params, run.total_hits = fetched.query, fetched.params, fetched.total_hits
        run.read_count = fetched.read
    fields = ["status", "error", "finished_at", "query", "params", "total_hits", "read_count"]
    run.save(update_fields=[*fields, "new_count", "changed_count", "unchanged_count"])


def _execute(run: RefreshRun, job: Job) -> RefreshRun:
    """Fetch (no transaction open), then apply once under the run's lock; record any failure on the run.

    Whatever goes wrong ends the run "error" with the message (or "not queried" when no request of it was
    sent), so that no run is left "running". A lost database connection and the task's soft time limit
    are raised again after that (see `_finish_failed`): the task retries or stops.
    """
    with transport.recording_sends() as sent:
        try:
            fetched = job.fetch()
        except Exception as exc:  # not BaseException: a worker shutting down leaves the run to its redelivery
            _finish_failed(run, exc, sent)
            if isinstance(exc, RERAISED):
                raise
            return run
    try:
        with transaction.atomic():
            locked = RefreshRun.objects.select_for_update(of=("self",)).select_related("candidate").get(pk=run.pk)
            if locked.is_done:  # another delivery of the same task finished it meanwhile
                return locked
            _name_writes(locked)
            outcome = job.apply(locked, fetched)
            locked.new_count, locked.changed_count = outcome.new, outcome.changed
            locked.unchanged_count = outcome.unchanged
            empty = not outcome.new and not outcome.changed and not outcome.unchanged
            if fetched.partial:  # what was read is applied, and the log says what was not
                _finish(locked, RunStatus.PARTIAL, error=_partial_note(fetched), fetched=fetched)
            else:
                _finish(locked, RunStatus.EMPTY if empty else RunStatus.SUCCESS, fetched=fetched)
            for change in outcome.changes:
                change.refresh_run = locked
            EvidenceChange.objects.bulk_create(outcome.changes)
            _publish_new_evidence(locked, outcome)
            _recompute_levels(locked, outcome)
            if any(c.significant for c in outcome.changes):
                transaction.on_commit(lambda: _alert(locked.pk))
            return locked
    except Exception as exc:  # a record that failed to parse or to store: its transaction wrote nothing
        _finish_failed(run, exc, sent, fetched=fetched)
        if isinstance(exc, RERAISED):
            raise
        return run


def _partial_note(fetched: Fetched) -> str:
    total = "?" if fetched.total_hits is None else fetched.total_hits
    return f"partial: read {fetched.read} of {total} — {fetched.partial}"


def _finish_failed(run: RefreshRun, exc: Exception, sent: list[str], *, fetched: Fetched | None = None) -> None:
    """Record why the run failed: "not queried" when none of its requests was sent, else "error"."""
    if isinstance(exc, DB_LOST):
        return  # nothing can be written; the task retries and the run, still "running", is claimed again
    if isinstance(exc, SourceError | ValueError | KeyError | TypeError):
        message = str(exc) or type(exc).__name__
    elif isinstance(exc, SoftTimeLimitExceeded):
        message = f"stopped by the task's time limit ({settings.CELERY_TASK_SOFT_TIME_LIMIT} s)"
    else:
        log.exception("refresh run %s (%s) failed", run.pk, run.source)
        message = f"unexpected {type(exc).__name__}: {exc}"
    status = RunStatus.ERROR
    if not sent and fetched is None and isinstance(exc, NOT_SENT):
        status = RunStatus.NOT_QUERIED
    elif sent and fetched is None and isinstance(exc, (*NOT_SENT, SoftTimeLimitExceeded)):
        shown = ", ".join(sent[:3]) + (f" and {len(sent) - 3} more" if len(sent) > 3 else "")
        message += f" — after {len(sent)} request{'s' if len(sent) > 1 else ''} had been sent ({shown})"
    try:
        _finish(run, status, error=message, fetched=fetched)
    except DB_LOST:
        log.warning("refresh run %s: could not record its failure (%s)", run.pk, message)


def _publish_new_evidence(run: RefreshRun, outcome: Outcome) -> None:
    """Queue the "new_evidence" webhook per market (idempotent on the run), in the run's transaction."""
    if not outcome.changes:
        return
    by_market: dict[int, list[EvidenceChange]] = {}
    markets = dict(
        Candidate.objects.filter(pk__in={c.candidate_id for c in outcome.changes}).values_list(
            "pk", "dossier__market_id"
        )
    )
    for change in outcome.changes:
        by_market.setdefault(markets[change.candidate_id], []).append(change)
    for market_id, changes in by_market.items():
        payload = {
            "refresh_run": run.pk,
            "source": run.source,
            "counts": {"new": outcome.new, "changed": outcome.changed, "unchanged": outcome.unchanged},
            "changes": [
                {"candidate": c.candidate_id, "kind": c.kind, "significant": c.significant, "detail": c.detail}
                for c in changes[:MAX_WEBHOOK_CHANGES]
            ],
            "more": max(0, len(changes) - MAX_WEBHOOK_CHANGES),
        }
        webhook_event_publish(event="new_evidence", key=f"refresh-run:{run.pk}", payload=payload, market_id=market_id)


def _name_writes(run: RefreshRun) -> None:
    """Tell the audit triggers who and what wrote the rows of this transaction."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('reviews.reason', %s, true), set_config('reviews.actor_id', %s, true)",
            [f"evidence refresh run {run.pk}", str(run.requested_by_id or "")],
        )


def _alert(run_id: int) -> None:
    from dossiers.tasks import send_evidence_alert

    send_evidence_alert(run_id)


def unnotified_alert_runs(*, limit: int = 200) -> list[int]:
    """Runs with significant changes nobody was told about, older than EVIDENCE_ALERT_GRACE seconds.

    The alert is sent after the run's commit; a broker down at that moment, or a worker killed before the
    reviews side stamped `notified_at`, loses it, and a redelivered refresh task finds the run done. The
    beat's `evidence_alerts_sweep` sends these again (the reviews side tells each change once). Changes
    older than EVIDENCE_ALERT_MAX_AGE are no longer news and are left alone.
    """
    now = timezone.now()
    grace, max_age = settings.EVIDENCE_ALERT_GRACE, settings.EVIDENCE_ALERT_MAX_AGE
    changes = EvidenceChange.objects.filter(
        significant=True,
        notified_at__isnull=True,
        refresh_run__isnull=False,
        created_at__lt=now - timedelta(seconds=grace),
        created_at__gte=now - timedelta(seconds=max_age),
    )
    runs = changes.order_by("refresh_run_id").values_list("refresh_run_id", flat=True).distinct()
    return [run_id for run_id in runs[:limit] if run_id is not None]


def _recompute_levels(run: RefreshRun, outcome: Outcome) -> None:
    """Regrade after a successful run: its candidate (whatever changed since, e.g. curation through an
    import, the level is current after each refresh) and every candidate that includes a trial whose
    phase, status or allocation the run changed. Labels and RxNorm ids play no part in the level.
    """
    affected = set(outcome.regrade)
    if run.candidate_id is not None:
        affected.add(run.candidate_id)
    for candidate in Candidate.objects.filter(pk__in=affected):
        evidence_level_recompute(candidate=candidate)


def evidence_level_recompute(*, candidate: Candidate) -> Candidate:
    """Store the level the documented rules give for the candidate's included evidence, with reasons."""
    result = evidence_level_compute(candidate)
    level, reasons = str(result.level), list(result.reasons)
    if (candidate.computed_evidence_level, candidate.evidence_level_reasons) != (level, reasons):
        Candidate.objects.filter(pk=candidate.pk).update(computed_evidence_level=level, evidence_level_reasons=reasons)
        candidate.computed_evidence_level, candidate.evidence_level_reasons = level, reasons
    return candidate


def candidate_refresh(*, candidate_id: int, request_id: uuid.UUID) -> list[RefreshRun]:
    """Run the candidate's trial and literature queries of one request; finished runs are left alone.

    They search by the drug's names (`search_names`). A drug RxNorm has not normalised yet is normalised
    first, by the drug's RxNorm run of the same request (so it is never done twice: the drug's own task
    finds it done), whichever of the two tasks a worker takes first.
    """
    candidate = Candidate.objects.select_related("dossier__drug").get(pk=candidate_id)
    drug, disease = candidate.dossier.drug, candidate.disease
    if not drug.rxcui:
        _run_jobs(request_id, [_rxcui_job(drug.name)], drug=drug)
        drug.refresh_from_db(fields=["rxcui", "rxnorm_name"])
    names = search_names(drug)
    runs = _run_jobs(request_id, [_trials_job(names, disease), _papers_job(names, disease)], candidate=candidate)
    if runs and all(r.status in REFRESHED for r in runs):
        Candidate.objects.filter(pk=candidate.pk).update(evidence_refreshed_at=timezone.now())
    return runs


def drug_refresh(*, drug_id: int, request_id: uuid.UUID) -> list[RefreshRun]:
    """Run the drug's RxNorm normalisation and label query of one request."""
    drug = Drug.objects.get(pk=drug_id)
    return _run_jobs(request_id, [_rxcui_job(drug.name), _label_job(drug.name)], drug=drug)


def search_names(drug: Drug) -> list[str]:
    """The names trials and papers are searched by, any of which may match: RxNorm's name when known (the
    approximate match of a misspelt name), the drug's own name, and up to MAX_SYNONYMS of its synonyms
    (brand names), each once whatever its case. Names shorter than 3 characters are left out (an
    abbreviation would match unrelated records), and quotes or brackets, which are query syntax, dropped."""
    names: list[str] = []
    synonyms = [n for n in (drug.synonyms or []) if isinstance(n, str)]
    for raw in (drug.rxnorm_name, drug.name, *synonyms):
        name = " ".join(re.sub(r"[\"()\[\]{}]", " ", raw or "").split())
        if len(name) >= 3 and name.casefold() not in {n.casefold() for n in names}:
            names.append(name)
    own = 2 if drug.rxnorm_name and drug.rxnorm_name.casefold() != drug.name.casefold() else 1
    return names[: own + MAX_SYNONYMS] or [drug.name]


def _run_jobs(
    request_id: uuid.UUID, jobs: list[Job], *, candidate: Candidate | None = None, drug: Drug | None = None
) -> list[RefreshRun]:
    """Claim and execute each job's run in turn; at the time limit the runs not reached say why."""
    runs: list[RefreshRun] = []
    for number, job in enumerate(jobs):
        run = _claim(request_id, job, candidate=candidate, drug=drug)
        if run is None:
            continue
        try:
            runs.append(_execute(run, job))
        except SoftTimeLimitExceeded:
            later = [j.source for j in jobs[number + 1 :]]
            RefreshRun.objects.filter(
                request_id=request_id, candidate=candidate, drug=drug, source__in=later, status=RunStatus.PENDING
            ).update(
                status=RunStatus.NOT_QUERIED,
                error="not sent: the task reached its time limit before this query",
                finished_at=timezone.now(),
            )
            raise
    return runs


# ---------------------------------------------------------------- trials


def _trials_job(names: Sequence[str], disease: str) -> Job:
    drug = clinicaltrials.intervention_query(names)
    params: dict[str, Any] = {"query.cond": disease, "query.intr": drug, "pageSize": TRIAL_PAGE_SIZE}
    query = transport.query_url(f"{settings.CLINICALTRIALS_BASE_URL}/studies", params)

    def fetch() -> Fetched:
        search = clinicaltrials.search_studies(condition=disease, intervention=drug, page_size=TRIAL_PAGE_SIZE)
        read, total = len({t.nct_id for t in search.trials}), search.total_count
        if not search.complete:
            partial = f"paging stopped at the cap of {search.pages} pages (CLINICALTRIALS_MAX_PAGES)"
        elif total is not None and read < total:
            partial = f"the registry listed {read} of the {total} studies it counted"
        else:
            partial = ""
        return Fetched(
            query=search.url, params=params, total_hits=total, records=search.trials, read=read, partial=partial
        )

    return Job(Source.CLINICALTRIALS, query, params, fetch, _apply_trials)


def status_label(status: str) -> str:
    """The registry's enum as people read it: ACTIVE_NOT_RECRUITING → "Active, Not Recruiting"."""
    words = status.replace("_", " ").title()
    return words.replace("Active Not", "Active, Not")


def phase_label(phases: Sequence[str]) -> str:
    """Registry phases as the dossier writes them: [PHASE2, PHASE3] → "Phase 2/3"; none → "N/A"."""
    numbers = sorted({int(d) for p in phases for d in re.findall(r"[1-4]", p)})
    if not numbers:
        return "N/A" if not phases or phases == ["NA"] else ", ".join(phases)
    early = "Early " if any(p.upper().startswith("EARLY") for p in phases) else ""
    return f"{early}Phase {'/'.join(str(n) for n in numbers)}"


def _trial_values(record: TrialRecord) -> dict[str, Any]:
    return {
        "title": record.brief_title or record.official_title,
        "phase": phase_label(record.phases),
        "status": status_label(record.overall_status),
        "why_stopped": record.why_stopped,
        "allocation": record.allocation.strip().upper()[:20],
        "enrollment": record.enrollment,
        "start_date": record.start_date,
        "completion_date": record.completion_date,
        "conditions": list(record.conditions),
        "interventions": list(record.interventions),
        "brief_summary": record.brief_summary,
        "has_results": record.has_results,
        "last_update": record.last_update_date,
    }


def _same(field_name: str, old: Any, new: Any) -> bool:
    if field_name == "status":  # "Active, Not Recruiting" (a report) equals ACTIVE_NOT_RECRUITING
        return re.sub(r"[^A-Z]+", "_", str(old).upper()) == re.sub(r"[^A-Z]+", "_", str(new).upper())
    if field_name == "phase":
        return trial_phase_numbers(str(old)) == trial_phase_numbers(str(new)) or old == new
    return bool(old == new)


def _blank(value: Any) -> bool:
    return value in (None, "", [])


def _provenance(source: str, fetched: Fetched, now: Any) -> dict[str, Any]:
    return {
        "origin": Provenance.Origin.SOURCE,
        "origin_name": SOURCE_LABELS[Source(source)],
        "origin_query": fetched.query,
        "retrieved_at": now,
    }


def _trial_changes(trial: ClinicalTrial, values: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Fields that changed (news) and fields only filled, applying both to `trial`."""
    changed, filled = [], []
    for name in (*TRIAL_TRACKED, *TRIAL_FILLED, *TRIAL_SYNCED):
        old, new = getattr(trial, name), values[name]
        if _blank(new) or _same(name, old, new):
            continue
        if _blank(old) or name in TRIAL_SYNCED:
            filled.append(name)
        elif name in TRIAL_TRACKED:
            changed.append(name)
        else:
            continue  # curated text stays
        setattr(trial, name, new)
    return changed, filled


def _trial_change_rows(trial: ClinicalTrial, before: dict[str, Any], changed: list[str]) -> list[tuple[str, bool]]:
    """(kind, significant) for what changed in a known trial."""
    kinds: list[tuple[str, bool]] = []
    if "status" in changed or "why_stopped" in changed:
        safety = clinicaltrials.is_safety_stop(trial.status, trial.why_stopped)
        kinds.append((Kind.TRIAL_STOPPED_FOR_SAFETY, True) if safety else (Kind.TRIAL_STATUS_CHANGED, False))
    if "has_results" in changed and trial.has_results:
        kinds.append((Kind.RESULTS_POSTED, False))
    if "enrollment" in changed:
        kinds.append((Kind.ENROLLMENT_CHANGED, False))
    if "phase" in changed:
        became_phase3 = 3 in trial_phase_numbers(trial.phase) and 3 not in trial_phase_numbers(before["phase"])
        kinds.append((Kind.PHASE_CHANGED, became_phase3))
    return kinds or [(Kind.TRIAL_STATUS_CHANGED, False)]


def _apply_trials(run: RefreshRun, fetched: Fetched) -> Outcome:
    assert run.candidate is not None
    candidate, now = run.candidate, timezone.now()
    records: dict[str, TrialRecord] = {r.nct_id: r for r in sorted(fetched.records, key=lambda r: r.nct_id)}
    outcome = Outcome(total_hits=fetched.total_hits)
    regraded: list[int] = []
    provenance = _provenance(Source.CLINICALTRIALS, fetched, now)
    known = _stored(
        ClinicalTrial, "nct_id", records, lambda n: ClinicalTrial(nct_id=n, **_trial_values(records[n]), **provenance)
    )
    # Lock (and re-read) only the trials that differ, so that unchanged shared trials never serialise workers.
    stale = [n for n, t in known.items() if _trial_changes(_copy(t), _trial_values(records[n])) != ([], [])]
    known.update({t.nct_id: t for t in ClinicalTrial.objects.select_for_update().filter(nct_id__in=stale)})
    linked = set(
        CandidateTrial.objects.filter(candidate=candidate, trial__nct_id__in=records).values_list(
            "trial__nct_id", flat=True
        )
    )
    for nct_id, record in records.items():
        trial = known[nct_id]
        before = {name: getattr(trial, name) for name in TRIAL_TRACKED}
        changed, filled = _trial_changes(trial, _trial_values(record))
        if changed or filled:
            trial.retrieved_at = now
            trial.save(update_fields=[*changed, *filled, "retrieved_at"])
        if TRIAL_GRADED.intersection(changed + filled):
            regraded.append(trial.pk)
        if changed:
            outcome.changed += 1
            outcome.changes += _changes_for_trial_links(trial, before, changed, now)
        if nct_id not in linked:
            outcome.new += 1
            outcome.changes.append(_new_trial_change(candidate, trial, record))
        elif not changed:
            outcome.unchanged += 1
    new_links = [
        CandidateTrial(
            candidate=candidate,
            trial=known[n],
            curation_status=CurationStatus.SUGGESTED,
            first_seen_at=now,
            **provenance,
        )
        for n in records
        if n not in linked
    ]
    CandidateTrial.objects.bulk_create(new_links, ignore_conflicts=True)
    included = CandidateTrial.objects.filter(trial_id__in=regraded, curation_status=CurationStatus.INCLUDED)
    outcome.regrade.update(included.values_list("candidate_id", flat=True))
    return outcome


def _stored(model: Any, key: str, wanted: Iterable[str], build: Callable[[str], Any]) -> dict[str, Any]:
    """The rows of `model` whose `key` is in `wanted`, inserting the missing ones (a concurrent insert wins)."""
    wanted = list(wanted)
    rows = {getattr(r, key): r for r in model.objects.filter(**{f"{key}__in": wanted})}
    missing = [build(k) for k in wanted if k not in rows]
    if missing:
        model.objects.bulk_create(missing, ignore_conflicts=True)
        rows = {getattr(r, key): r for r in model.objects.filter(**{f"{key}__in": wanted})}
    return rows


def _copy(trial: ClinicalTrial) -> ClinicalTrial:
    return ClinicalTrial(**{name: getattr(trial, name) for name in (*TRIAL_TRACKED, *TRIAL_FILLED, *TRIAL_SYNCED)})


def _new_trial_change(candidate: Candidate, trial: ClinicalTrial, record: TrialRecord) -> EvidenceChange:
    phase3 = 3 in trial_phase_numbers(trial.phase)
    detail = {"nct_id": trial.nct_id, "phase": trial.phase, "status": trial.status, "title": trial.title}
    if record.stopped_for_safety:
        detail["why_stopped"] = trial.why_stopped
        return EvidenceChange(candidate=candidate, kind=Kind.TRIAL_STOPPED_FOR_SAFETY, significant=True, detail=detail)
    return EvidenceChange(candidate=candidate, kind=Kind.NEW_TRIAL, significant=phase3, detail=detail)


def _changes_for_trial_links(
    trial: ClinicalTrial, before: dict[str, Any], changed: list[str], now: Any
) -> list[EvidenceChange]:
    """A change to a shared trial is news for every candidate linked to it."""
    links = list(CandidateTrial.objects.filter(trial=trial))
    CandidateTrial.objects.filter(trial=trial).update(changed_at=now, changed_fields=changed)
    detail = {
        "nct_id": trial.nct_id,
        "fields": {name: [before[name], getattr(trial, name)] for name in changed},
    }
    return [
        EvidenceChange(candidate_id=link.candidate_id, kind=kind, significant=significant, detail=detail)
        for link in links
        for kind, significant in _trial_change_rows(trial, before, changed)
    ]


# ---------------------------------------------------------------- literature


def _papers_job(names: Sequence[str], disease: str) -> Job:
    term = pubmed.drug_disease_term(names, disease)
    params: dict[str, Any] = {"db": "pubmed", "term": term, "retmax": pubmed.ESEARCH_PAGE}
    query = transport.query_url(f"{settings.NCBI_EUTILS_BASE_URL}/esearch.fcgi", params)
    return Job(Source.PUBMED, query, params, lambda: _fetch_papers(term, params), _apply_papers)


def _fetch_papers(term: str, params: dict[str, Any]) -> Fetched:
    """Every PMID of the search (paged, up to PUBMED_MAX_RECORDS), their summaries, and abstracts not stored yet."""
    cap = settings.PUBMED_MAX_RECORDS
    search = pubmed.esearch_all(term=term, max_ids=cap)
    summaries = pubmed.esummary(ids=search.ids) if search.ids else []
    known = set(Publication.objects.filter(pmid__in=search.ids).exclude(abstract="").values_list("pmid", flat=True))
    missing = [s.pmid for s in summaries if s.pmid not in known]
    articles = pubmed.efetch(ids=missing) if missing else []
    abstracts = {a.pmid: a.abstract for a in articles}
    gaps = []
    if len(search.ids) < search.count:
        if len(search.ids) >= cap:
            gaps.append(f"PubMed found {search.count}, the first {cap} are read (PUBMED_MAX_RECORDS)")
        else:
            gaps.append(f"esearch listed {len(search.ids)} of the {search.count} PMIDs it counted")
    if len(summaries) < len(search.ids):
        gaps.append(f"esummary returned {len(summaries)} of {len(search.ids)} records (withdrawn or unknown PMIDs)")
    fetched_abstracts = sum(1 for pmid in missing if pmid in abstracts)
    if fetched_abstracts < len(missing):
        gaps.append(f"efetch returned {fetched_abstracts} of {len(missing)} records, so some abstracts are missing")
    return Fetched(
        query=search.url,
        params=params,
        total_hits=search.count,
        records=(summaries, abstracts),
        read=len(summaries),
        partial="; ".join(gaps),
    )


def study_type(publication_types: Sequence[str]) -> str:
    """The most telling PubMed publication type ("Meta-Analysis" before "Review"), else the first one.

    A randomized Phase 3 paper keeps both facts, which the evidence level needs: "Randomized Controlled
    Trial, Phase III".
    """
    rct_phase3 = {"Randomized Controlled Trial", "Clinical Trial, Phase III"}.issubset(publication_types)
    if rct_phase3 and not {"Meta-Analysis", "Systematic Review"}.intersection(publication_types):
        return "Randomized Controlled Trial, Phase III"
    for wanted in STUDY_TYPES:
        if wanted in publication_types:
            return wanted
    return publication_types[0] if publication_types else ""


def _paper_values(summary: ArticleSummary, abstract: str) -> dict[str, Any]:
    return {
        "year": summary.year,
        "study_type": study_type(summary.publication_types)[:60],
        "journal": summary.journal[:300],
        "title": summary.title,
        "authors": list(summary.authors),
        "doi": summary.doi[:200],
        "abstract": abstract,
    }


def _apply_papers(run: RefreshRun, fetched: Fetched) -> Outcome:
    assert run.candidate is not None
    candidate, now = run.candidate, timezone.now()
    summaries, abstracts = fetched.records
    records: dict[str, ArticleSummary] = {s.pmid: s for s in summaries}
    outcome = Outcome(total_hits=fetched.total_hits)
    provenance = _provenance(Source.PUBMED, fetched, now)
    known = _stored(
        Publication,
        "pmid",
        sorted(records),
        lambda n: Publication(pmid=n, **_paper_values(records[n], abstracts.get(n, "")), **provenance),
    )
    for pmid, summary in records.items():  # PubMed records rarely change: fill blanks, never replace
        values = _paper_values(summary, abstracts.get(pmid, ""))
        if not any(_blank(getattr(known[pmid], n)) and not _blank(values[n]) for n in PUBLICATION_FILLED):
            continue
        publication = known[pmid] = Publication.objects.select_for_update().get(pk=known[pmid].pk)
        filled = [n for n in PUBLICATION_FILLED if _blank(getattr(publication, n)) and not _blank(values[n])]
        if filled:
            for name in filled:
                setattr(publication, name, values[name])
            publication.save(update_fields=filled)
    linked = set(
        CandidatePublication.objects.filter(candidate=candidate, publication__pmid__in=records).values_list(
            "publication__pmid", flat=True
        )
    )
    new_links = []
    for pmid in records:
        if pmid in linked:
            outcome.unchanged += 1
            continue
        outcome.new += 1
        publication = known[pmid]
        new_links.append(
            CandidatePublication(
                candidate=candidate,
                publication=publication,
                curation_status=CurationStatus.SUGGESTED,
                first_seen_at=now,
                **provenance,
            )
        )
        detail = {"pmid": pmid, "title": publication.title, "study_type": publication.study_type}
        outcome.changes.append(EvidenceChange(candidate=candidate, kind=Kind.NEW_PUBLICATION, detail=detail))
    CandidatePublication.objects.bulk_create(new_links, ignore_conflicts=True)
    return outcome


# ---------------------------------------------------------------- drug: RxNorm and label


def _rxcui_job(name: str) -> Job:
    params: dict[str, Any] = {"name": name, "search": 2}
    query = transport.query_url(f"{settings.RXNAV_BASE_URL}/REST/rxcui.json", params)

    def fetch() -> Fetched:
        found = rxnorm.normalise(name=name)
        if found is None or found.exact:
            return Fetched(query=query, params=params, total_hits=1 if found else 0, records=found)
        # the exact lookup found nothing; the approximate match's query is the one that answered
        approximate: dict[str, str | int] = {"term": name, "maxEntries": 1}
        url = transport.query_url(f"{settings.RXNAV_BASE_URL}/REST/approximateTerm.json", approximate)
        shown = {**approximate, "matched": found.name}
        return Fetched(query=url, params=shown, total_hits=1, records=found)

    return Job(Source.RXNAV, query, params, fetch, _apply_rxcui)


def _apply_rxcui(run: RefreshRun, fetched: Fetched) -> Outcome:
    """Store the RxCUI and the name searches use (see `search_names`)."""
    assert run.drug_id is not None
    drug, found = Drug.objects.select_for_update().get(pk=run.drug_id), fetched.records
    outcome = Outcome(total_hits=fetched.total_hits)
    if found is None:
        return outcome
    if drug.rxcui == found.rxcui:
        outcome.unchanged = 1
    elif drug.rxcui:
        outcome.changed = 1
    else:
        outcome.new = 1
    if (drug.rxcui, drug.rxnorm_name) != (found.rxcui, found.name[:200]):
        Drug.objects.filter(pk=drug.pk).update(rxcui=found.rxcui, rxnorm_name=found.name[:200])
    return outcome


def _label_job(name: str) -> Job:
    clean = name.replace('"', "").strip()
    params: dict[str, Any] = {
        "search": f'openfda.generic_name:"{clean}" OR openfda.brand_name:"{clean}"',
        "limit": 5,
        "sort": "effective_time:desc",
    }
    query = transport.query_url(f"{settings.OPENFDA_BASE_URL}/drug/label.json", params)
    return Job(Source.OPENFDA, query, params, lambda: _fetch_label(name, params), _apply_label)


def _fetch_label(name: str, params: dict[str, Any]) -> Fetched:
    search = openfda.search_labels(name=name)
    wanted = name.strip().casefold()
    exact = [lbl for lbl in search.labels if wanted in {n.casefold() for n in (*lbl.brand_names, *lbl.generic_names)}]
    label = (exact or list(search.labels))[0] if search.labels else None
    return Fetched(query=search.url, params=params, total_hits=search.total, records=label)


def _apply_label(run: RefreshRun, fetched: Fetched) -> Outcome:
    assert run.drug is not None
    label: DrugLabel | None = fetched.records
    outcome = Outcome(total_hits=fetched.total_hits)
    if label is None:
        return outcome
    now = timezone.now()
    provenance = _provenance(Source.OPENFDA, fetched, now)
    for dossier in run.drug.dossiers.select_for_update():
        ours = {
            s.kind: s for s in dossier.safety_statements.filter(origin=Provenance.Origin.SOURCE, origin_name="openFDA")
        }
        first_retrieval = not ours
        touched: list[str] = []
        for kind, attr in STATEMENT_KINDS:
            text = getattr(label, attr)
            row = ours.get(kind)
            if not text or (row is not None and row.text == text):
                outcome.unchanged += 1 if text else 0
                continue
            touched.append(kind)
            if row is None:
                outcome.new += 1
                SafetyStatement.objects.create(
                    dossier=dossier, kind=kind, text=text, position=1000, source_id=label.set_id,
                    source_updated=label.effective_time, **provenance,
                )  # fmt: skip
            else:
                outcome.changed += 1
                row.text, row.source_id, row.source_updated = text, label.set_id, label.effective_time
                row.origin_query, row.retrieved_at = fetched.query, now
                row.save(update_fields=["text", "source_id", "source_updated", "origin_query", "retrieved_at"])
        _resolve_label_gap(dossier.pk)
        if touched:
            outcome.changes += _label_changes(dossier.pk, label, touched, first_retrieval)
    return outcome


def _resolve_label_gap(dossier_id: int) -> None:
    """The label fills the "warnings and contraindications were not retrieved" gap."""
    gaps = DataGap.objects.filter(dossier_id=dossier_id, status=DataGap.Status.OPEN)
    for word in GAP_WORDS:
        gaps = gaps.filter(description__icontains=word)
    if gaps.update(status=DataGap.Status.RESOLVED):
        dossier_content_changed(dossier_id=dossier_id)


def _label_changes(dossier_id: int, label: DrugLabel, touched: list[str], first: bool) -> list[EvidenceChange]:
    detail = {"set_id": label.set_id, "effective_time": label.effective_time, "sections": touched}
    if first:
        kind, significant = Kind.LABEL_RETRIEVED, False
    elif SafetyStatement.Kind.BOXED_WARNING in touched:
        kind, significant = Kind.NEW_BOXED_WARNING, True
        detail["boxed_warning"] = label.boxed_warning[:2000]
    else:
        kind, significant = Kind.LABEL_CHANGED, False
    candidate_ids = Candidate.objects.filter(dossier_id=dossier_id).values_list("pk", flat=True)
    return [EvidenceChange(candidate_id=pk, kind=kind, significant=significant, detail=detail) for pk in candidate_ids]


# ---------------------------------------------------------------- curation of suggestions


@transaction.atomic
def evidence_curate(
    *, kind: str, link_id: int, by: User, decision: str, grade: str = "", key_findings: str | None = None
) -> CandidateTrial | CandidatePublication:
    """Include or exclude a suggested (or curated) trial or paper with a relevance grade; recompute the level.

    `kind` is "trial" (grade A/B/C, relevance) or "publication" (grade 1/2/3, tier).
    """
    model: type[CandidateTrial] | type[CandidatePublication]
    model = {"trial": CandidateTrial, "publication": CandidatePublication}.get(kind)  # type: ignore[assignment]
    if model is None:
        raise ValidationError(f"kind: {kind!r} is not one of trial, publication.")
    try:
        link = model.objects.select_for_update().select_related("candidate__dossier__market").get(pk=link_id)
    except model.DoesNotExist:
        raise ValidationError(f"{kind} link {link_id} does not exist.") from None
    if not can_curate(by, link.candidate.dossier.market):
        raise PermissionDenied("Only a curator of this market can curate its evidence.")
    if decision not in (CurationStatus.INCLUDED, CurationStatus.EXCLUDED):
        raise ValidationError(f"decision: {decision!r} is not one of included, excluded.")
    _set_actor(by, f"evidence {decision}")
    link.curation_status = decision
    fields = ["curation_status"]
    if isinstance(link, CandidateTrial):
        if grade and grade not in CandidateTrial.Relevance.values:
            raise ValidationError(f"grade: {grade!r} is not a relevance grade (A, B, C).")
        link.relevance, fields = grade or link.relevance, [*fields, "relevance"]
    else:
        if grade and grade not in {"1", "2", "3"}:
            raise ValidationError(f"grade: {grade!r} is not a tier (1, 2, 3).")
        link.tier, fields = int(grade) if grade else link.tier, [*fields, "tier"]
    if key_findings is not None:
        link.key_findings, fields = key_findings.strip(), [*fields, "key_findings"]
    link.save(update_fields=fields)
    evidence_level_recompute(candidate=link.candidate)
    signed_content_changed(candidate_ids=[link.candidate_id], by=by)
    return link


def _set_actor(by: User, reason: str) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('reviews.actor_id', %s, true)", [str(by.pk)])
            cursor.execute("SELECT set_config('reviews.reason', %s, true)", [reason])


@transaction.atomic
def candidate_mark_seen(*, candidate_id: int, by: User) -> CandidateVisit:
    """Record that `by` reviewed the candidate's evidence now: older changes stop being "new" for them."""
    visit, _ = CandidateVisit.objects.update_or_create(
        user=by, candidate_id=candidate_id, defaults={"seen_at": timezone.now()}
    )
    return visit
