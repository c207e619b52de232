"""Import a TxGNN prediction CSV into one market: stream, validate, stage, then upsert set-based.

Three shapes, told by the header (other columns are ignored):
  scores  drugbank_id, drug_name, potential_indication (or 潛在新適應症), txgnn_score, rank, source
  kg      license_id, brand_name, drug_ingredient, drugbank_id, potential_indication, source
  merged  license_id, brand_name, drug_ingredient, drugbank_id, potential_indication, kg_prediction,
          dl_prediction, dl_score, source, confidence

Every row is validated while the file streams; the first bad row stops the import with a message naming
the file, line, field and value, and nothing is written. Valid rows go into a temporary staging table
(PostgreSQL `COPY`, or batched inserts on SQLite) and reach `dossiers_prediction` through a few set-based
statements in one transaction.

Policies:
- Duplicates: the kg and merged shapes repeat a (drug, disease) pair once per licensed product. One
  prediction per (market, drug, disease) is kept: the row with the highest score (rows without a score
  last), ties going to the earliest line. Its license_id and brand_name are the ones stored.
- Drugs are matched by DrugBank id, else by case-insensitive name; missing ones are created. A name match
  whose drug has no DrugBank id gets the file's id; a name match with a *different* id is an error.
- The import adds and updates; it never deletes predictions that a newer file no longer lists.
- A value the file lacks never erases a stored one: a missing score or rank and a blank confidence, licence
  or brand keep what the prediction has, and the sources unite (a KG row arriving on a DL prediction makes
  it KG+DL, and so does a DL row on a KG one). Importing the scores file and the knowledge-graph file of a
  market, in either order, gives each pair its score, its rank, its licence and the source KG+DL.
- Re-importing the same file changes nothing (rows whose values are equal are not touched).
- One import per market runs at a time on PostgreSQL (an advisory lock); a second one waits for the first.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import io
import math
import sys
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, cast

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models.functions import Lower
from django.utils import timezone
from tqdm import tqdm

from dossiers.models import Drug, ImportRun, Market, Prediction, PredictionSource
from dossiers.permissions import can_curate

GZIP_MAGIC = b"\x1f\x8b"
SNIFF_BYTES = 64 * 1024
SQLITE_BATCH = 2000
LOOKUP_BATCH = 500  # stays under SQLite's bound-parameter limit
PROGRESS_EVERY = 50_000
SOURCES = {
    "DL": PredictionSource.DL.value,
    "KG": PredictionSource.KG.value,
    "KG+DL": PredictionSource.KG_DL.value,
    "DL+KG": PredictionSource.KG_DL.value,
}
SOURCE_SPELLINGS = {"": "", "KG + DL": PredictionSource.KG_DL.value, **SOURCES}  # looked up as written first
COLUMN_ALIASES = {"潛在新適應症": "potential_indication", "潜在新适应症": "potential_indication"}
# Longest value each stored field accepts (the model's max_length), checked before COPY names no line.
_NAME_LENGTH = Drug._meta.get_field("name").max_length or 0
MAX_LENGTH: dict[str, int] = {
    "drugbank_id": Drug._meta.get_field("drugbank_id").max_length or 0,
    "drug_name": _NAME_LENGTH,
    "drug_ingredient": _NAME_LENGTH,
    "potential_indication": Prediction._meta.get_field("disease").max_length or 0,
    "confidence": Prediction._meta.get_field("confidence").max_length or 0,
    "license_id": Prediction._meta.get_field("license_id").max_length or 0,
    "brand_name": Prediction._meta.get_field("brand_name").max_length or 0,
}


class PredictionImportError(ValidationError):
    """A bad input file: the message names the file, the line and the field."""

    def __init__(self, file_name: str, message: str, *, line: int | None = None, field: str | None = None) -> None:
        where = file_name
        if line is not None:
            where += f", line {line}"
        if field:
            where += f", field {field}"
        super().__init__(f"{where}: {message}")
        self.file_name, self.line, self.field = file_name, line, field

    def __str__(self) -> str:
        return self.messages[0]


@dataclass(frozen=True)
class Shape:
    """One of the CSV layouts the TxGNN pipeline writes: which columns it needs and what they mean."""

    name: str
    required: tuple[str, ...]
    drug_column: str
    score_column: str | None = None
    rank_column: str | None = None
    confidence_column: str | None = None
    license_columns: bool = False


SHAPES = (
    Shape(
        "scores",
        ("drugbank_id", "drug_name", "potential_indication", "txgnn_score", "rank", "source"),
        drug_column="drug_name",
        score_column="txgnn_score",
        rank_column="rank",
    ),
    Shape(
        "kg",
        ("license_id", "brand_name", "drug_ingredient", "drugbank_id", "potential_indication", "source"),
        drug_column="drug_ingredient",
        license_columns=True,
    ),
    Shape(
        "merged",
        (
            "license_id",
            "brand_name",
            "drug_ingredient",
            "drugbank_id",
            "potential_indication",
            "dl_score",
            "source",
            "confidence",
        ),
        drug_column="drug_ingredient",
        score_column="dl_score",
        confidence_column="confidence",
        license_columns=True,
    ),
)


@dataclass(frozen=True)
class PredictionImportResult:
    """What one import read and wrote."""

    run_id: int
    file_name: str
    shape: str
    rows_total: int
    distinct: int
    inserted: int
    updated: int
    drugs_created: int
    seconds: float
    phases: dict[str, float] = field(default_factory=dict)  # seconds spent reading, resolving, upserting

    @property
    def unchanged(self) -> int:
        return self.distinct - self.inserted - self.updated

    @property
    def duplicates(self) -> int:
        return self.rows_total - self.distinct

    @property
    def rows_written(self) -> int:
        return self.inserted + self.updated

    @property
    def rows_per_second(self) -> float:
        return self.rows_total / self.seconds if self.seconds > 0 else 0.0


@dataclass
class _DrugKeys:
    """Distinct drugs seen in the file, numbered as they first appear; staging rows carry the number."""

    by_id: dict[str, int] = field(default_factory=dict)
    by_name: dict[str, int] = field(default_factory=dict)
    specs: list[tuple[str | None, str, int]] = field(default_factory=list)  # (drugbank_id, name, first line)

    def key(self, drugbank_id: str, name: str, line: int) -> int:
        if drugbank_id:
            found = self.by_id.get(drugbank_id)
            if found is None:
                found = self.by_id[drugbank_id] = len(self.specs)
                self.specs.append((drugbank_id, name, line))
            return found
        lowered = name.lower()
        found = self.by_name.get(lowered)
        if found is None:
            found = self.by_name[lowered] = len(self.specs)
            self.specs.append((None, name, line))
        return found


StageRow = tuple[int, int, str, float | None, int | None, str, str, str, str]
STAGING_TABLES = ("prediction_stage", "prediction_drug_map")
BEST_TABLE = "prediction_best"  # only when the market already has predictions
STAGE_COLUMNS = "line, drug_key, disease, score, rank, source, confidence, license_id, brand_name"
STAGE_TYPES = ("int4", "int4", "text", "float8", "int4", "text", "text", "text", "text")  # for binary COPY
ADVISORY_LOCK_CLASS = 0x50524544  # "PRED": pg_advisory_xact_lock(this, market id) serialises a market's imports


def predictions_import(
    *,
    path: Path,
    file_name: str | None = None,
    market_code: str,
    by: User | None = None,
    progress: bool = False,
) -> PredictionImportResult:
    """Import one prediction CSV (plain or gzip) into a market, all or nothing; record an ImportRun.

    `by=None` is for trusted callers (management commands, the demo loader).
    """
    path = Path(path)
    file_name = file_name or path.name
    market = Market.objects.filter(code__iexact=market_code.strip()).first()
    if market is None:
        raise ValidationError(f"Unknown market code {market_code!r}: create the market first.")
    if by is not None and not can_curate(by, market):
        raise PermissionDenied("Only a curator of this market can import its predictions.")
    run = ImportRun.objects.create(
        kind=ImportRun.Kind.PREDICTIONS,
        file_name=file_name[:255],
        sha256=_sha256(path),
        market=market,
        created_by=by,
    )
    started = time.perf_counter()
    try:
        with transaction.atomic():
            result = _import(path=path, file_name=file_name, market=market, run=run, progress=progress)
    except Exception as exc:
        # The import's own transaction is rolled back; the failed run is kept as a record of the attempt.
        run.status, run.error, run.finished_at = ImportRun.Status.FAILED, str(_message(exc)), timezone.now()
        run.save(update_fields=["status", "error", "finished_at"])
        raise
    result = _with_seconds(result, time.perf_counter() - started)
    run.status = ImportRun.Status.SUCCEEDED if result.rows_written else ImportRun.Status.UNCHANGED
    run.rows_total, run.rows_written, run.finished_at = result.rows_total, result.rows_written, timezone.now()
    run.save(update_fields=["status", "rows_total", "rows_written", "finished_at"])
    return result


def _message(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(exc.messages)
    return f"{type(exc).__name__}: {exc}"


def _with_seconds(result: PredictionImportResult, seconds: float) -> PredictionImportResult:
    return PredictionImportResult(**{**result.__dict__, "seconds": seconds})


def _import(*, path: Path, file_name: str, market: Market, run: ImportRun, progress: bool) -> PredictionImportResult:
    _check_text(path, file_name)
    use_copy = _use_copy()
    with connection.cursor() as cursor, _progress_bar(path, progress) as bar:
        _create_staging(cursor)
        reader = _CsvRows(path, file_name, bar)
        shape, rows = reader.open()
        keys = _DrugKeys()
        validated = _validated(rows, shape, reader, keys)
        clock = time.perf_counter()
        total = _copy_rows(cursor, validated) if use_copy else _insert_rows(cursor, validated)
        if total == 0:
            raise PredictionImportError(file_name, "the file has a header but no data rows", line=2)
        phases = {"read and stage": time.perf_counter() - clock}
        bar.set_description("resolving drugs")
        clock = time.perf_counter()
        drug_ids, created = _resolve_drugs(keys, file_name)
        _stage_drug_map(cursor, drug_ids)
        phases["resolve drugs"] = time.perf_counter() - clock
        bar.set_description("upserting")
        clock, now = time.perf_counter(), timezone.now()
        distinct, inserted, updated = _upsert(cursor, market_id=market.pk, now=now, phases=phases, postgres=use_copy)
        _drop_staging(cursor)
        phases["upsert"] = time.perf_counter() - clock
        if use_copy and inserted:
            clock = time.perf_counter()
            _check_foreign_keys(cursor)
            phases["check foreign keys"] = time.perf_counter() - clock
    return PredictionImportResult(
        run_id=run.pk,
        file_name=file_name,
        shape=shape.name,
        rows_total=total,
        distinct=distinct,
        inserted=inserted,
        updated=updated,
        drugs_created=created,
        seconds=0.0,
        phases=phases,
    )


# --- reading -------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _open_binary(path: Path) -> tuple[io.BufferedReader, IO[bytes]]:
    """Open the raw file and, told by its magic bytes rather than its name, a decompressing view of it."""
    raw = path.open("rb")
    if raw.peek(2)[:2] == GZIP_MAGIC:
        return raw, cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb"))
    return raw, raw


def _check_text(path: Path, file_name: str) -> None:
    """Refuse empty and binary files before any work: NUL bytes or invalid UTF-8 in the first 64 KiB."""
    raw, stream = _open_binary(path)
    try:
        head = stream.read(SNIFF_BYTES)
    except (OSError, EOFError, zlib.error) as exc:
        raise PredictionImportError(file_name, f"not a readable gzip file ({exc})") from None
    finally:
        raw.close()
    if not head.strip():
        raise PredictionImportError(file_name, "the file is empty: expected a CSV header line", line=1)
    if b"\x00" in head:
        raise PredictionImportError(file_name, "binary content (NUL bytes): expected a CSV text file")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError as exc:
        line = head[: exc.start].count(b"\n") + 1
        raise PredictionImportError(file_name, "not UTF-8 text: expected a CSV text file", line=line) from None


class _ProgressBar:
    """A tqdm bar over the bytes of the file on disk, or a no-op when progress is off."""

    def __init__(self, path: Path, enabled: bool) -> None:
        self._bar = (
            tqdm(total=path.stat().st_size, unit="B", unit_scale=True, file=sys.stderr, desc="reading")
            if enabled
            else None
        )
        self._position = 0

    def move_to(self, position: int) -> None:
        if self._bar is not None and position > self._position:
            self._bar.update(position - self._position)
            self._position = position

    def set_description(self, text: str) -> None:
        if self._bar is not None:
            self._bar.set_description(text)

    def __enter__(self) -> _ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()


def _progress_bar(path: Path, enabled: bool) -> _ProgressBar:
    return _ProgressBar(path, enabled)


class _CsvRows:
    """The data rows of the CSV as lists of strings; errors carry the file name and line."""

    def __init__(self, path: Path, file_name: str, bar: _ProgressBar) -> None:
        self.path, self.file_name, self.bar = path, file_name, bar
        self.reader: Any = None
        self.columns: dict[str, int] = {}

    @property
    def line(self) -> int:
        return self.reader.line_num if self.reader is not None else 0

    def open(self) -> tuple[Shape, Iterator[list[str]]]:
        raw, stream = _open_binary(self.path)
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
        self.reader = csv.reader(text)
        header = self._next(raw)
        if header is None:
            raise PredictionImportError(self.file_name, "the file is empty: expected a CSV header line", line=1)
        self.columns = {COLUMN_ALIASES.get(name.strip(), name.strip().lower()): i for i, name in enumerate(header)}
        shape = _shape_for(self.columns, self.file_name)
        return shape, self._rows(raw, len(header))

    def _next(self, raw: io.BufferedReader) -> list[str] | None:
        try:
            return next(self.reader, None)
        except (csv.Error, UnicodeDecodeError, EOFError, OSError, zlib.error) as exc:
            raise self._read_error(exc) from None

    def _read_error(self, exc: Exception) -> PredictionImportError:
        if isinstance(exc, csv.Error):
            return PredictionImportError(self.file_name, f"malformed CSV ({exc})", line=self.line + 1)
        if isinstance(exc, UnicodeDecodeError):
            return PredictionImportError(self.file_name, "not UTF-8 text", line=self.line + 1)
        return PredictionImportError(
            self.file_name, f"the compressed file is damaged or truncated ({exc})", line=self.line + 1
        )

    def _rows(self, raw: io.BufferedReader, width: int) -> Iterator[list[str]]:
        # One loop over the reader, not a call per row: this runs millions of times. The try only sees the
        # reader's errors, since a consumer's exceptions never enter a generator at its yield.
        count = 0
        try:
            for fields in self.reader:
                if len(fields) != width:
                    if not fields:
                        continue  # a blank line
                    self._wrong_width(fields, width)
                count += 1
                if count % PROGRESS_EVERY == 0:
                    self.bar.move_to(raw.tell())
                yield fields
            self.bar.move_to(raw.tell())
        except (csv.Error, UnicodeDecodeError, EOFError, OSError, zlib.error) as exc:
            raise self._read_error(exc) from None
        finally:
            raw.close()

    def _wrong_width(self, fields: list[str], width: int) -> None:
        if len(fields) > width:
            raise PredictionImportError(
                self.file_name, f"{len(fields)} fields where the header has {width}", line=self.line
            )
        missing = min((i, name) for name, i in self.columns.items() if i >= len(fields))[1]
        raise PredictionImportError(
            self.file_name,
            f"truncated row: {len(fields)} fields where the header has {width}",
            line=self.line,
            field=missing,
        )


def _shape_for(columns: dict[str, int], file_name: str) -> Shape:
    """Pick the shape whose columns the header has most of; every column of that shape must be there."""
    shape = max(SHAPES, key=lambda s: len(set(s.required) & columns.keys()))
    missing = [name for name in shape.required if name not in columns]
    if len(missing) > len(shape.required) // 2:
        expected = " | ".join(", ".join(s.required) for s in SHAPES)
        raise PredictionImportError(
            file_name, f"the header is not a TxGNN prediction header; expected one of: {expected}", line=1
        )
    if missing:
        raise PredictionImportError(
            file_name,
            f"missing column in the header (the {shape.name} shape needs {', '.join(shape.required)})",
            line=1,
            field=missing[0],
        )
    return shape


# --- validating ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Columns:
    """Where each field sits in a row of this file; None when the shape has no such column."""

    drugbank_id: int
    drug: int
    disease: int
    source: int
    score: int | None
    rank: int | None
    confidence: int | None
    license_id: int | None
    brand_name: int | None

    @classmethod
    def of(cls, shape: Shape, columns: dict[str, int]) -> _Columns:
        def at(name: str | None) -> int | None:
            return columns[name] if name is not None else None

        return cls(
            drugbank_id=columns["drugbank_id"],
            drug=columns[shape.drug_column],
            disease=columns["potential_indication"],
            source=columns["source"],
            score=at(shape.score_column),
            rank=at(shape.rank_column),
            confidence=at(shape.confidence_column),
            license_id=at("license_id" if shape.license_columns else None),
            brand_name=at("brand_name" if shape.license_columns else None),
        )


def _validated(rows: Iterator[list[str]], shape: Shape, reader: _CsvRows, keys: _DrugKeys) -> Iterator[StageRow]:
    """Turn CSV rows into staging rows, raising on the first bad value."""
    # The import's hot loop, run millions of times: locals, inlined fast paths for well-formed values, and the
    # detailed checks (which word the errors) only when a fast path misses.
    file_name, at = reader.file_name, _Columns.of(shape, reader.columns)
    csv_reader, by_id, key = reader.reader, keys.by_id, keys.key
    columns = ("drugbank_id", shape.drug_column, "potential_indication", "confidence", "license_id", "brand_name")
    id_max, name_max, disease_max, confidence_max, license_max, brand_max = (MAX_LENGTH[c] for c in columns)
    for fields in rows:
        line = csv_reader.line_num
        drugbank_id = fields[at.drugbank_id].strip().upper()
        name = fields[at.drug].strip()
        disease = fields[at.disease].strip()
        if not disease:
            raise PredictionImportError(file_name, "a disease is required", line=line, field="potential_indication")
        if not name and not drugbank_id:
            raise PredictionImportError(
                file_name, "a drug name or DrugBank id is required", line=line, field=shape.drug_column
            )
        score = rank = None
        if at.score is not None:
            raw = fields[at.score]
            try:
                score = float(raw)
            except ValueError:
                score = math.nan
            if not 0.0 <= score <= 1.0:  # also true for NaN
                score = _score(raw.strip(), file_name, line, shape)
        if at.rank is not None:
            raw = fields[at.rank]
            rank = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 10 else 0
            if rank <= 0:
                rank = _rank(raw.strip(), file_name, line, shape)
        source = SOURCE_SPELLINGS.get(fields[at.source])
        if source is None:
            source = _source(fields[at.source].strip(), file_name, line)
        confidence = fields[at.confidence].strip() if at.confidence is not None else ""
        license_id = fields[at.license_id].strip() if at.license_id is not None else ""
        brand_name = fields[at.brand_name].strip() if at.brand_name is not None else ""
        if (
            len(drugbank_id) > id_max
            or len(name) > name_max
            or len(disease) > disease_max
            or len(confidence) > confidence_max
            or len(license_id) > license_max
            or len(brand_name) > brand_max
        ):
            values = (drugbank_id, name, disease, confidence, license_id, brand_name)
            _check_lengths(file_name, line, list(zip(columns, values, strict=True)))
        drug_key = by_id.get(drugbank_id) if drugbank_id else None
        if drug_key is None:
            drug_key = key(drugbank_id, name or drugbank_id, line)
        yield (line, drug_key, disease, score, rank, source, confidence, license_id, brand_name)


def _check_lengths(file_name: str, line: int, values: list[tuple[str, str]]) -> None:
    for column, value in values:
        if len(value) > MAX_LENGTH[column]:
            raise PredictionImportError(
                file_name, f"{value[:40]!r}… is longer than {MAX_LENGTH[column]} characters", line=line, field=column
            )


def _score(raw: str, file_name: str, line: int, shape: Shape) -> float | None:
    if not raw and shape.name == "merged":
        return None  # a KG-only row of the merged file has no DL score
    try:
        score = float(raw)
    except ValueError:
        score = math.nan
    if not 0.0 <= score <= 1.0:  # also false for NaN
        raise PredictionImportError(
            file_name, f"{raw!r} is not a score between 0 and 1", line=line, field=shape.score_column
        )
    return score


def _rank(raw: str, file_name: str, line: int, shape: Shape) -> int:
    if raw.isascii() and raw.isdigit() and 0 < (rank := int(raw)) < 2**31:  # not "²", which isdigit() allows
        return rank
    raise PredictionImportError(file_name, f"{raw!r} is not a positive whole rank", line=line, field=shape.rank_column)


def _source(raw: str, file_name: str, line: int) -> str:
    if not raw:
        return ""
    source = SOURCES.get(raw.upper().replace(" ", ""))
    if source is None:
        raise PredictionImportError(file_name, f"{raw!r} is not DL, KG or KG + DL", line=line, field="source")
    return source


# --- staging -------------------------------------------------------------------------------------


def _use_copy() -> bool:
    """COPY and the single-statement upsert need PostgreSQL; elsewhere the portable fallback runs."""
    return connection.vendor == "postgresql"


def _create_staging(cursor: Any) -> None:
    """Temporary tables private to this connection; dropped at the end, or undone with the transaction."""
    if connection.vendor == "sqlite":  # a temp table left by a crashed run of this connection
        for table in (*STAGING_TABLES, BEST_TABLE):
            cursor.execute(f"DROP TABLE IF EXISTS temp.{table}")
    cursor.execute(
        "CREATE TEMPORARY TABLE prediction_stage (line integer NOT NULL, drug_key integer NOT NULL,"
        " disease text NOT NULL, score double precision, rank integer, source text NOT NULL,"
        " confidence text NOT NULL, license_id text NOT NULL, brand_name text NOT NULL)"
    )
    cursor.execute("CREATE TEMPORARY TABLE prediction_drug_map (drug_key integer PRIMARY KEY, drug_id bigint NOT NULL)")


def _drop_staging(cursor: Any) -> None:
    # Explicitly, because a caller's outer transaction would keep them alive for a second import.
    for table in STAGING_TABLES:
        cursor.execute(f"DROP TABLE {table}")


def _copy_rows(cursor: Any, rows: Iterator[StageRow]) -> int:
    """Stream validated rows into the staging table with COPY; a bad row aborts the COPY and the import."""
    # Binary: no text escaping on either side (a third faster than text COPY), and floats travel exactly.
    count = 0
    with cursor.copy(f"COPY prediction_stage ({STAGE_COLUMNS}) FROM STDIN (FORMAT binary)") as copy:
        copy.set_types(STAGE_TYPES)
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def _insert_rows(cursor: Any, rows: Iterator[StageRow]) -> int:
    """The SQLite fallback: the same staging table, filled with executemany in batches."""
    sql = f"INSERT INTO prediction_stage ({STAGE_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
    count, batch = 0, []
    for row in rows:
        batch.append(row)
        if len(batch) >= SQLITE_BATCH:
            cursor.executemany(sql, batch)
            count, batch = count + len(batch), []
    if batch:
        cursor.executemany(sql, batch)
        count += len(batch)
    return count


def _stage_drug_map(cursor: Any, drug_ids: list[int]) -> None:
    cursor.executemany("INSERT INTO prediction_drug_map (drug_key, drug_id) VALUES (%s, %s)", list(enumerate(drug_ids)))


# --- drugs ---------------------------------------------------------------------------------------


def _resolve_drugs(keys: _DrugKeys, file_name: str) -> tuple[list[int], int]:
    """Map each distinct drug of the file to a Drug id, creating the missing ones; return ids and count."""
    by_id = _existing_by_drugbank_id([dbid for dbid, _, _ in keys.specs if dbid])
    by_name = _existing_by_name([name for _, name, _ in keys.specs])
    resolved: list[int | None] = [None] * len(keys.specs)
    to_create: dict[str, tuple[int, str | None, str]] = {}  # lower name → (first key, drugbank id, name)
    fills: dict[int, str] = {}
    # Rows with a DrugBank id first, so that rows naming the same drug without an id reuse it.
    order = sorted(range(len(keys.specs)), key=lambda k: keys.specs[k][0] is None)
    for key in order:
        drugbank_id, name, line = keys.specs[key]
        lowered = name.lower()
        if drugbank_id and drugbank_id in by_id:
            resolved[key] = by_id[drugbank_id]
        elif lowered in by_name:
            pk, known_id = by_name[lowered]
            if drugbank_id and known_id and known_id != drugbank_id:
                raise PredictionImportError(
                    file_name,
                    f"{drugbank_id!r} names drug {name!r}, but the portal's drug of that name has DrugBank id "
                    f"{known_id}",
                    line=line,
                    field="drugbank_id",
                )
            if drugbank_id and not known_id:
                fills[pk] = drugbank_id
                by_name[lowered] = (pk, drugbank_id)
            resolved[key] = pk
        elif lowered in to_create:
            _, planned_id, _ = to_create[lowered]
            if drugbank_id and planned_id != drugbank_id:
                raise PredictionImportError(
                    file_name,
                    f"{drugbank_id!r} names drug {name!r}, which an earlier row gives DrugBank id {planned_id}",
                    line=line,
                    field="drugbank_id",
                )
        else:
            to_create[lowered] = (key, drugbank_id or None, name)
    for pk, drugbank_id in fills.items():
        Drug.objects.filter(pk=pk, drugbank_id__isnull=True).update(drugbank_id=drugbank_id)
    created = _create_drugs(list(to_create.values()))
    for key in range(len(keys.specs)):
        if resolved[key] is None:
            resolved[key] = created[keys.specs[key][1].lower()]
    return [pk for pk in resolved if pk is not None], len(created)


def _existing_by_drugbank_id(ids: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for start in range(0, len(ids), LOOKUP_BATCH):
        chunk = ids[start : start + LOOKUP_BATCH]
        rows = Drug.objects.filter(drugbank_id__in=chunk).values_list("drugbank_id", "pk")
        found.update((drugbank_id, pk) for drugbank_id, pk in rows if drugbank_id)
    return found


def _existing_by_name(names: list[str]) -> dict[str, tuple[int, str | None]]:
    lowered = sorted({name.lower() for name in names})
    found: dict[str, tuple[int, str | None]] = {}
    for start in range(0, len(lowered), LOOKUP_BATCH):
        chunk = lowered[start : start + LOOKUP_BATCH]
        rows = Drug.objects.annotate(lname=Lower("name")).filter(lname__in=chunk)
        for lname, pk, drugbank_id in rows.values_list("lname", "pk", "drugbank_id"):
            found[lname] = (pk, drugbank_id)
    return found


def _create_drugs(specs: list[tuple[int, str | None, str]]) -> dict[str, int]:
    """Create the drugs the portal lacks; return lower name → id."""
    if not specs:
        return {}
    Drug.objects.bulk_create(
        [Drug(name=name, drugbank_id=drugbank_id) for _, drugbank_id, name in specs], batch_size=LOOKUP_BATCH
    )
    return {lname: pk for lname, (pk, _) in _existing_by_name([name for _, _, name in specs]).items()}


# --- upserting -----------------------------------------------------------------------------------

# One prediction per (drug, disease): the best score (rows without one last), ties to the earliest line.
# PostgreSQL's DISTINCT ON sorts like the unique index, so the inserts walk its b-tree in order.
_BEST_POSTGRES = (
    "SELECT DISTINCT ON (m.drug_id, s.disease) m.drug_id, s.disease, s.score, s.rank, s.source, s.confidence,"
    " s.license_id, s.brand_name FROM prediction_stage s JOIN prediction_drug_map m USING (drug_key)"
    " ORDER BY m.drug_id, s.disease, s.score DESC NULLS LAST, s.line"
)
_BEST_PORTABLE = (
    "SELECT drug_id, disease, score, rank, source, confidence, license_id, brand_name"
    " FROM (SELECT m.drug_id, s.*, ROW_NUMBER() OVER (PARTITION BY m.drug_id, s.disease"
    " ORDER BY s.score DESC NULLS LAST, s.line) AS n"
    " FROM prediction_stage s JOIN prediction_drug_map m USING (drug_key)) AS ranked WHERE n = 1"
)
_COLUMNS = ("score", "rank", "source", "confidence", "license_id", "brand_name")
# What a stored prediction p holds after the file's row b: b's values, except that a value b lacks (a NULL
# score or rank, a blank text) keeps p's, and the sources unite, so that a knowledge-graph file never wipes
# the scores of a scores file, and a pair both files name is KG+DL.
_MERGED = {
    "score": "COALESCE(b.score, p.score)",
    "rank": "COALESCE(b.rank, p.rank)",
    "source": (
        "CASE WHEN b.source = '' OR b.source = p.source THEN p.source WHEN p.source = '' THEN b.source"
        f" ELSE '{PredictionSource.KG_DL.value}' END"
    ),
    **{
        column: f"COALESCE(NULLIF(b.{column}, ''), p.{column})" for column in ("confidence", "license_id", "brand_name")
    },
}
# "Differs, NULLs equal", spelt without IS DISTINCT FROM, which older SQLite lacks.
_CHANGED = " OR ".join(
    f"NOT COALESCE(p.{column} = {merged}, p.{column} IS NULL AND {merged} IS NULL)"
    for column, merged in _MERGED.items()
)
_UPDATE = (
    f"UPDATE dossiers_prediction AS p SET {', '.join(f'{c} = {_MERGED[c]}' for c in _COLUMNS)}, imported_at = %s"
    f" FROM {BEST_TABLE} AS b"
    f" WHERE p.market_id = %s AND p.drug_id = b.drug_id AND p.disease = b.disease AND ({_CHANGED})"
)
_INSERT = (
    "INSERT INTO dossiers_prediction (market_id, drug_id, disease, score, rank, source, confidence, license_id,"
    " brand_name, imported_at)"
    " SELECT %s, b.drug_id, b.disease, b.score, b.rank, b.source, b.confidence, b.license_id, b.brand_name, %s"
    " FROM {rows} AS b"
)
_INSERT_NEW = _INSERT.format(rows=BEST_TABLE) + (
    " WHERE NOT EXISTS (SELECT 1 FROM dossiers_prediction AS p"
    " WHERE p.market_id = %s AND p.drug_id = b.drug_id AND p.disease = b.disease)"
)


def _check_foreign_keys(cursor: Any) -> None:
    """Run the deferred foreign-key checks of the inserted rows now rather than at commit.

    They are one query per row and foreign key (a third of a first import's time), and the phases should say
    so; afterwards the constraints are deferred again, as Django declares them, for the rest of the caller's
    transaction.
    """
    constraints = connection.introspection.get_constraints(cursor, Prediction._meta.db_table)
    names = ", ".join(connection.ops.quote_name(name) for name, c in constraints.items() if c["foreign_key"])
    if names:
        cursor.execute(f"SET CONSTRAINTS {names} IMMEDIATE")
        cursor.execute(f"SET CONSTRAINTS {names} DEFERRED")


def _upsert(
    cursor: Any, *, market_id: int, now: datetime, phases: dict[str, float], postgres: bool
) -> tuple[int, int, int]:
    """Deduplicate the staged rows and write them: (distinct, inserted, updated); equal rows are not touched.

    A market's first import is one plain INSERT … SELECT of the deduplicated rows. Later ones UPDATE the rows
    whose merged values differ, then INSERT the new pairs: unlike INSERT … ON CONFLICT DO UPDATE, which
    probes the unique index row by row and locks (so writes) every existing row even when it skips it, a
    re-import of an unchanged file reads the market once and writes nothing.
    """
    clock = time.perf_counter()
    best = _BEST_POSTGRES if postgres else _BEST_PORTABLE
    if postgres:
        cursor.execute("SET LOCAL work_mem = '256MB'")  # sorts and hash joins of millions of rows in memory
        cursor.execute("ANALYZE prediction_stage")
        # The emptiness test and UPDATE-then-INSERT hold only if no other import of this market runs meanwhile.
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [ADVISORY_LOCK_CLASS, market_id])
    cursor.execute("SELECT 1 FROM dossiers_prediction WHERE market_id = %s LIMIT 1", [market_id])
    if cursor.fetchone() is None:
        cursor.execute(_INSERT.format(rows=f"({best})"), [market_id, now])
        return cursor.rowcount, cursor.rowcount, 0
    cursor.execute(f"CREATE TEMPORARY TABLE {BEST_TABLE} AS {best}")
    distinct = cursor.rowcount
    if postgres:
        cursor.execute(f"ANALYZE {BEST_TABLE}")
    if distinct < 0:  # SQLite does not count the rows of CREATE TABLE … AS
        cursor.execute(f"SELECT count(*) FROM {BEST_TABLE}")
        distinct = cursor.fetchone()[0]
    phases["deduplicate"] = time.perf_counter() - clock
    cursor.execute(_UPDATE, [now, market_id])
    updated = cursor.rowcount
    cursor.execute(_INSERT_NEW, [market_id, now, market_id])
    inserted = cursor.rowcount
    cursor.execute(f"DROP TABLE {BEST_TABLE}")
    return distinct, inserted, updated
