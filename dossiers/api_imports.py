"""Imports through the API: upload a file, get a job (an `ImportRun`) that a Celery task runs, poll its progress.

`POST /api/v1/imports/` (multipart: file, kind, market) stores the file, creates the job row and enqueues
`import_job_task` after commit; `GET /api/v1/imports/<id>/` answers status, progress, result or errors.
The importers themselves (`dossier_import`, `predictions_import`) do the work, all or nothing, with the
same permission checks as the upload page.

Kept in one module because of file ownership during issue 6 (service, task and endpoint); split it into
`services/import_jobs.py`, `tasks.py` and `api.py` when convenient. `ImportRun` has no progress or
structured-result field, so those live in the cache (Redis) beside the row; the row keeps the outcome.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from pathlib import Path
from typing import Any

from celery import shared_task
from django.conf import settings
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from dossiers.models import ImportRun, Market
from dossiers.permissions import can_curate
from dossiers.report_parser import ReportError
from dossiers.selectors import markets_visible_to
from dossiers.services.dossier_import import dossier_import
from dossiers.services.prediction_import import PredictionImportError, predictions_import

logger = logging.getLogger(__name__)

KINDS = [ImportRun.Kind.DOSSIER, ImportRun.Kind.PREDICTIONS]
STATE_TTL = 30 * 24 * 3600  # the job's progress and result stay readable for a month
UPLOAD_DIR = "imports/api"


# ---------------------------------------------------------------- state kept beside the row


def _state_key(run_id: int) -> str:
    return f"import-job:{run_id}"


def import_job_state(run: ImportRun) -> dict[str, Any]:
    """Progress, result and errors of a job; what the row holds when the cache has forgotten them."""
    state = cache.get(_state_key(run.pk))
    if state is not None:
        return {"progress": state["progress"], "result": state.get("result"), "errors": state.get("errors", [])}
    running = run.status == ImportRun.Status.RUNNING
    failed = run.status == ImportRun.Status.FAILED
    return {
        "progress": {"state": "queued" if running else "finished", "percent": 0 if running else 100},
        "result": None
        if running or failed
        else {"status": run.status, "rows_total": run.rows_total, "rows_written": run.rows_written},
        "errors": [_error_entry(run.file_name, None, None, run.error)] if failed else [],
    }


def _set_state(run_id: int, **state: Any) -> None:
    cache.set(_state_key(run_id), state, STATE_TTL)


def _error_entry(file: str, line: int | None, field: str | None, message: str) -> dict[str, Any]:
    return {"file": file, "line": line, "field": field, "message": message}


# ---------------------------------------------------------------- services


@transaction.atomic
def import_job_create(*, file: UploadedFile, kind: str, market: Market, by: User) -> ImportRun:
    """Store an uploaded file and create its import job; the task runs after commit."""
    if kind not in KINDS:
        raise ValidationError({"kind": f"{kind!r} is not one of {', '.join(KINDS)}."})
    if not can_curate(by, market):
        raise PermissionDenied("Only a curator of this market can import into it.")
    size = file.size or 0
    if size > settings.IMPORT_UPLOAD_MAX_BYTES:
        raise ValidationError({"file": f"uploads are limited to {settings.IMPORT_UPLOAD_MAX_BYTES} bytes."})
    if size == 0:
        raise ValidationError({"file": "The file is empty."})
    file_name = "".join(ch for ch in Path(file.name or "").name if ch.isprintable())[:200] or "upload"
    digest = hashlib.sha256()
    for chunk in file.chunks():
        digest.update(chunk)
    file.seek(0)
    run = ImportRun.objects.create(
        kind=kind, file_name=file_name, sha256=digest.hexdigest(), market=market, created_by=by
    )
    default_storage.delete(_upload_name(run))  # a leftover would make save() pick another name
    default_storage.save(_upload_name(run), file)
    _set_state(run.pk, progress={"state": "queued", "percent": 0})
    transaction.on_commit(lambda: import_job_task.delay(run.pk))
    return run


def _upload_name(run: ImportRun) -> str:
    # Never the client's file name: storage would sanitise it into a name we could not find again.
    return f"{UPLOAD_DIR}/{run.pk}.upload"


def import_job_run(*, run_id: int) -> ImportRun | None:
    """Run a queued job once: import the stored file, record the outcome on the job row, drop the file.

    Returns None when the job is finished already or another worker holds it (a redelivered message).
    """
    with transaction.atomic():
        run = (
            ImportRun.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("market", "created_by")
            .filter(pk=run_id, status=ImportRun.Status.RUNNING)
            .first()
        )
        if run is None:
            return None
        _set_state(run.pk, progress={"state": "running", "percent": 10})
        try:
            result = _import(run)
        except (ReportError, PredictionImportError, ValidationError, PermissionDenied) as exc:
            _finish_failed(run, exc)
        except Exception as exc:
            logger.exception("import job %s failed unexpectedly", run.pk)
            _finish_failed(run, exc, message="internal error while importing; the administrators were told.")
        else:
            _finish_succeeded(run, result)
    default_storage.delete(_upload_name(run))
    return run


def _import(run: ImportRun) -> dict[str, Any]:
    """Call the importer for the job's kind and return its result as plain data."""
    assert run.market is not None and run.created_by is not None  # noqa: S101  (set by import_job_create)
    with default_storage.open(_upload_name(run), "rb") as stored:
        if run.kind == ImportRun.Kind.DOSSIER:
            done = dossier_import(
                path_or_file=stored, file_name=run.file_name, market_code=run.market.code, by=run.created_by
            )
            _forget_importer_run(done.run.pk)
            return {
                "status": done.run.status,
                "rows_total": done.run.rows_total,
                "rows_written": done.run.rows_written,
                "dossier_id": done.dossier.pk,
                "candidate_id": done.candidate.pk,
                "created": done.total("created"),
                "updated": done.total("updated"),
                "unchanged": done.total("unchanged"),
                "deleted": done.total("deleted"),
            }
        # The prediction importer reads from a path (it sniffs gzip), so spool the stored file to disk.
        with tempfile.NamedTemporaryFile(suffix=Path(run.file_name).suffix) as spooled:
            for chunk in iter(lambda: stored.read(1024 * 1024), b""):
                spooled.write(chunk)
            spooled.flush()
            _set_state(run.pk, progress={"state": "running", "percent": 30})
            predictions = predictions_import(
                path=Path(spooled.name), file_name=run.file_name, market_code=run.market.code, by=run.created_by
            )
    _forget_importer_run(predictions.run_id)
    return {
        "status": ImportRun.Status.SUCCEEDED if predictions.rows_written else ImportRun.Status.UNCHANGED,
        "rows_total": predictions.rows_total,
        "rows_written": predictions.rows_written,
        "shape": predictions.shape,
        "distinct": predictions.distinct,
        "inserted": predictions.inserted,
        "updated": predictions.updated,
        "unchanged": predictions.unchanged,
        "drugs_created": predictions.drugs_created,
    }


def _forget_importer_run(importer_run_id: int) -> None:
    # The importers record their own ImportRun; the job row already stands for this import.
    ImportRun.objects.filter(pk=importer_run_id).delete()


def _forget_importer_failure(run: ImportRun) -> None:
    ImportRun.objects.filter(
        pk__gt=run.pk,
        kind=run.kind,
        file_name=run.file_name,
        created_by=run.created_by,
        status=ImportRun.Status.FAILED,
    ).delete()


def _finish_succeeded(run: ImportRun, result: dict[str, Any]) -> None:
    run.status = result["status"]
    run.rows_total, run.rows_written, run.finished_at = result["rows_total"], result["rows_written"], timezone.now()
    run.save(update_fields=["status", "rows_total", "rows_written", "finished_at"])
    _set_state(run.pk, progress={"state": "finished", "percent": 100}, result=result, errors=[])


def _finish_failed(run: ImportRun, exc: Exception, message: str | None = None) -> None:
    _forget_importer_failure(run)
    errors = [_located(run.file_name, exc, message)]
    run.status, run.finished_at = ImportRun.Status.FAILED, timezone.now()
    run.error = "; ".join(_describe(error) for error in errors)
    run.save(update_fields=["status", "error", "finished_at"])
    _set_state(run.pk, progress={"state": "finished", "percent": 100}, result=None, errors=errors)


def _located(file_name: str, exc: Exception, message: str | None) -> dict[str, Any]:
    if isinstance(exc, ReportError):
        return _error_entry(exc.file, exc.line, exc.field, exc.message)
    if isinstance(exc, PredictionImportError):
        text = str(exc)
        where = exc.file_name
        return _error_entry(
            exc.file_name, exc.line, exc.field, text.split(": ", 1)[1] if text.startswith(where) else text
        )
    if isinstance(exc, ValidationError):
        return _error_entry(file_name, None, None, " ".join(exc.messages))
    return _error_entry(file_name, None, None, message or str(exc))


def _describe(error: dict[str, Any]) -> str:
    where = error["file"]
    if error["line"] is not None:
        where += f", line {error['line']}"
    if error["field"]:
        where += f', field "{error["field"]}"'
    return f"{where}: {error['message']}"


@shared_task(acks_late=True)
def import_job_task(run_id: int) -> str:
    """Run one import job; a second delivery of the message finds it finished (or held) and does nothing."""
    run = import_job_run(run_id=run_id)
    return run.status if run is not None else "skipped"


# ---------------------------------------------------------------- API


class ImportCreateInput(serializers.Serializer):
    file = serializers.FileField(help_text="A dossier report (.txt/.md) or a prediction CSV (plain or .gz).")
    kind = serializers.ChoiceField(choices=KINDS)
    market = serializers.CharField(max_length=10, help_text='The market\'s code, e.g. "IN".')


class ImportErrorOutput(serializers.Serializer):
    file = serializers.CharField()
    line = serializers.IntegerField(allow_null=True)
    field = serializers.CharField(allow_null=True)
    message = serializers.CharField()


class ImportProgressOutput(serializers.Serializer):
    state = serializers.ChoiceField(choices=["queued", "running", "finished"])
    percent = serializers.IntegerField(min_value=0, max_value=100)


class ImportJobOutput(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.CharField()
    kind = serializers.CharField()
    file_name = serializers.CharField()
    sha256 = serializers.CharField()
    market = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=ImportRun.Status.choices)
    progress = ImportProgressOutput()
    rows_total = serializers.IntegerField()
    rows_written = serializers.IntegerField()
    result = serializers.DictField(allow_null=True, help_text="What the importer wrote, once it succeeded.")
    errors = ImportErrorOutput(many=True)  # type: ignore[assignment]
    created_by = serializers.CharField(allow_null=True)
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


def _job_data(run: ImportRun, request: Request) -> dict[str, Any]:
    return {
        "id": run.pk,
        "url": reverse("api:import-detail", args=[run.pk], request=request),
        "kind": run.kind,
        "file_name": run.file_name,
        "sha256": run.sha256,
        "market": run.market.code if run.market else None,
        "status": run.status,
        "rows_total": run.rows_total,
        "rows_written": run.rows_written,
        "created_by": run.created_by.get_username() if run.created_by else None,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        **import_job_state(run),
    }


def import_runs_visible_to(user: Any) -> QuerySet[ImportRun]:
    return ImportRun.objects.select_related("market", "created_by").filter(market__in=markets_visible_to(user))


JOB_EXAMPLE = {
    "id": 17,
    "url": "http://127.0.0.1:8000/api/v1/imports/17/",
    "kind": "predictions",
    "file_name": "predictions-IN.csv.gz",
    "sha256": "9f2c…",
    "market": "IN",
    "status": "failed",
    "progress": {"state": "finished", "percent": 100},
    "rows_total": 0,
    "rows_written": 0,
    "result": None,
    "errors": [
        {"file": "predictions-IN.csv.gz", "line": 2, "field": "txgnn_score", "message": "'high' is not a score"}
    ],
    "created_by": "curator",
    "started_at": "2026-03-01T09:30:00Z",
    "finished_at": "2026-03-01T09:30:02Z",
}


class ImportCreateApi(APIView):
    """Upload a file to import; the import runs in the background."""

    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        operation_id="imports_create",
        request={"multipart/form-data": ImportCreateInput},
        responses={202: ImportJobOutput},
        examples=[
            OpenApiExample(
                "Upload predictions",
                value={"file": "predictions-IN.csv.gz", "kind": "predictions", "market": "IN"},
                request_only=True,
                media_type="multipart/form-data",
                description="`file` is the file's bytes, sent as a multipart file part.",
            ),
            OpenApiExample(
                "Queued",
                value={
                    **JOB_EXAMPLE,
                    "status": "running",
                    "progress": {"state": "queued", "percent": 0},
                    "errors": [],
                    "finished_at": None,
                },
                response_only=True,
                status_codes=["202"],
            ),
        ],
        summary="Upload a dossier report or prediction CSV",
        description="Curators of the market only. Answers 202 with the job; poll its `url` for progress.",
    )
    def post(self, request: Request) -> Response:
        data = ImportCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        market = markets_visible_to(request.user).filter(code__iexact=data.validated_data["market"].strip()).first()
        if market is None:
            raise exceptions.NotFound(f"No market {data.validated_data['market']!r} that you can see.")
        run = import_job_create(
            file=data.validated_data["file"],
            kind=data.validated_data["kind"],
            market=market,
            by=request.user,  # type: ignore[arg-type]
        )
        run.refresh_from_db()  # inline (no broker) the job has already run
        body = _job_data(run, request)
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["url"]})


class ImportDetailApi(APIView):
    """One import job: status, progress, and the result or the errors (file, line, field)."""

    @extend_schema(
        operation_id="imports_retrieve",
        responses={200: ImportJobOutput},
        examples=[OpenApiExample("Failed", value=JOB_EXAMPLE, response_only=True)],
        summary="An import job's progress and outcome",
    )
    def get(self, request: Request, pk: int) -> Response:
        run = import_runs_visible_to(request.user).filter(pk=pk).first()
        if run is None:
            raise exceptions.NotFound()
        assert run.market is not None  # noqa: S101  (visible runs have a market)
        if not can_curate(request.user, run.market):  # type: ignore[arg-type]
            raise exceptions.PermissionDenied("Only curators of this market can see its import jobs.")
        return Response(_job_data(run, request))
