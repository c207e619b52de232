"""Run an importer on a file uploaded through the import page."""

from __future__ import annotations

import tempfile
from pathlib import Path

from django.contrib.auth.models import User
from django.core.files.uploadedfile import UploadedFile

from dossiers.models import ImportRun
from dossiers.services.dossier_import import dossier_import
from dossiers.services.prediction_import import predictions_import

UPLOAD_KINDS = [ImportRun.Kind.DOSSIER, ImportRun.Kind.PREDICTIONS]


def upload_import(*, file: UploadedFile, kind: str, market_code: str, by: User) -> str:
    """Import an uploaded file of the given kind; return a one-line summary. Errors propagate."""
    file_name = Path(file.name or "upload").name
    if kind == ImportRun.Kind.DOSSIER:
        result = dossier_import(path_or_file=file, file_name=file_name, market_code=market_code or None, by=by)
        return (
            f"{file_name}: {result.run.get_status_display()} — {result.dossier}, "
            f"{result.total('created')} rows created, {result.total('updated')} updated, "
            f"{result.total('unchanged')} unchanged."
        )
    if kind == ImportRun.Kind.PREDICTIONS:
        # The prediction importer streams from a path (and may sniff gzip), so spool the upload to disk.
        with tempfile.NamedTemporaryFile(suffix=Path(file_name).suffix) as spooled:
            for chunk in file.chunks():
                spooled.write(chunk)
            spooled.flush()
            predictions = predictions_import(
                path=Path(spooled.name), file_name=file_name, market_code=market_code, by=by
            )
        return (
            f"{file_name}: {predictions.rows_total} rows read, {predictions.inserted} predictions created, "
            f"{predictions.updated} updated, {predictions.unchanged} unchanged."
        )
    raise ValueError(f"Unknown import kind {kind!r}.")
