"""The TxGNN prediction importer: the three CSV shapes, gzip, idempotence, bad input, COPY vs fallback."""

from __future__ import annotations

import csv
import gzip
import io
import os
import random
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from dossiers.models import Drug, ImportRun, Market, Prediction
from dossiers.services import prediction_import
from dossiers.services.prediction_import import PredictionImportError, predictions_import
from portal.roles import Role
from tests.factories import make_drug, make_market, make_user

pytestmark = pytest.mark.django_db

SCORES = ["drugbank_id", "drug_name", "potential_indication", "txgnn_score", "rank", "source"]
KG = ["license_id", "brand_name", "drug_ingredient", "drugbank_id", "potential_indication", "source"]
MERGED = [
    "license_id",
    "brand_name",
    "drug_ingredient",
    "drugbank_id",
    "potential_indication",
    "kg_prediction",
    "dl_prediction",
    "dl_score",
    "source",
    "confidence",
]


def write_csv(path: Path, header: list[str], rows: Sequence[Sequence[object]], *, compress: bool = False) -> Path:
    """Write a CSV (optionally gzip-compressed, whatever the file's name) and return its path."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    data = text.getvalue().encode("utf-8")
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def scores_rows() -> list[list[object]]:
    return [
        ["DB00480", "Lenalidomide", "myeloid leukemia", "0.9949", "1", "DL"],
        ["DB00480", "Lenalidomide", "mantle cell lymphoma", "0.9921", "2", "DL"],
        ["DB00331", "Metformin", "polycystic ovary syndrome", "0.5", "3", ""],
    ]


def merged_rows(count: int, seed: int = 7) -> list[list[object]]:
    """A merged-shape file with repeated (drug, disease) pairs across licences, blank and tied scores."""
    rng = random.Random(seed)
    rows: list[list[object]] = []
    for i in range(count):
        drug = rng.randrange(count // 40 + 1)
        disease = f"disease {rng.randrange(60)}"
        score = "" if rng.random() < 0.1 else f"{rng.choice([0.25, 0.5, rng.random()]):.6f}"
        source = "KG" if score == "" else rng.choice(["DL", "KG + DL"])
        confidence = rng.choice(["high", "medium", "low"])
        rows.append(
            [
                f"LIC-{i}",
                f"Brand {i}",
                f"Ingredient {drug}",
                f"DB{drug:05d}",
                disease,
                "",
                "",
                score,
                source,
                confidence,
            ]
        )
    return rows


def stored(market: Market) -> dict[tuple[str | None, str], tuple]:
    """Every prediction of a market, keyed by DrugBank id and disease."""
    return {
        (p.drug.drugbank_id, p.disease): (
            p.drug.name,
            p.score,
            p.rank,
            p.source,
            p.confidence,
            p.license_id,
            p.brand_name,
        )
        for p in Prediction.objects.filter(market=market).select_related("drug")
    }


@pytest.fixture
def market() -> Market:
    return make_market("IN", "India")


# --- the three shapes ----------------------------------------------------------------------------


def test_scores_shape_stores_exact_values(tmp_path: Path, market: Market) -> None:
    path = write_csv(tmp_path / "scores.csv", SCORES, scores_rows())
    result = predictions_import(path=path, market_code="IN")
    assert (result.shape, result.rows_total, result.inserted, result.updated, result.drugs_created) == (
        "scores",
        3,
        3,
        0,
        2,
    )
    assert stored(market) == {
        ("DB00480", "myeloid leukemia"): ("Lenalidomide", 0.9949, 1, "DL", "", "", ""),
        ("DB00480", "mantle cell lymphoma"): ("Lenalidomide", 0.9921, 2, "DL", "", "", ""),
        ("DB00331", "polycystic ovary syndrome"): ("Metformin", 0.5, 3, "", "", "", ""),
    }
    run = ImportRun.objects.get(pk=result.run_id)
    assert (run.kind, run.status, run.rows_total, run.rows_written, run.market) == (
        "predictions",
        "succeeded",
        3,
        3,
        market,
    )
    assert len(run.sha256) == 64


def test_chinese_disease_header_is_the_scores_shape(tmp_path: Path, market: Market) -> None:
    header = ["drugbank_id", "drug_name", "潛在新適應症", "txgnn_score", "rank", "source"]
    path = write_csv(tmp_path / "tw.csv", header, [["DB00480", "Lenalidomide", "骨髓性白血病", "0.81", "7", "DL"]])
    predictions_import(path=path, market_code="IN")
    assert stored(market) == {("DB00480", "骨髓性白血病"): ("Lenalidomide", 0.81, 7, "DL", "", "", "")}


def test_kg_shape_keeps_the_first_licence_of_a_repeated_pair(tmp_path: Path, market: Market) -> None:
    rows = [
        ["TW-001", "Revlimid", "Lenalidomide", "DB00480", "myeloid leukemia", "KG", "extra"],
        ["TW-002", "Lenalid", "LENALIDOMIDE", "DB00480", "myeloid leukemia", "KG", "extra"],
        ["TW-003", "Glucophage", "Metformin", "", "obesity", "KG", "extra"],
    ]
    path = write_csv(tmp_path / "kg.csv", [*KG, "ignored"], rows)
    result = predictions_import(path=path, market_code="IN")
    assert (result.shape, result.rows_total, result.distinct, result.duplicates, result.inserted) == ("kg", 3, 2, 1, 2)
    assert stored(market) == {
        ("DB00480", "myeloid leukemia"): ("Lenalidomide", None, None, "KG", "", "TW-001", "Revlimid"),
        (None, "obesity"): ("Metformin", None, None, "KG", "", "TW-003", "Glucophage"),
    }


def test_merged_shape_keeps_the_best_score_and_normalises_the_source(tmp_path: Path, market: Market) -> None:
    rows = [
        ["L1", "Brand A", "Lenalidomide", "DB00480", "myeloid leukemia", "1", "1", "0.71", "KG + DL", "high"],
        ["L2", "Brand B", "Lenalidomide", "DB00480", "myeloid leukemia", "1", "1", "0.93", "KG + DL", "very high"],
        ["L3", "Brand C", "Lenalidomide", "DB00480", "myeloid leukemia", "1", "1", "0.93", "KG + DL", "tie"],
        ["L4", "Brand D", "Lenalidomide", "DB00480", "anemia", "1", "0", "", "KG", "low"],
        ["L5", "Brand E", "Lenalidomide", "DB00480", "anemia", "0", "1", "0.2", "DL", "low"],
    ]
    path = write_csv(tmp_path / "merged.csv", MERGED, rows)
    result = predictions_import(path=path, market_code="IN")
    assert (result.shape, result.distinct, result.inserted) == ("merged", 2, 2)
    assert stored(market) == {
        ("DB00480", "myeloid leukemia"): ("Lenalidomide", 0.93, None, "KG+DL", "very high", "L2", "Brand B"),
        ("DB00480", "anemia"): ("Lenalidomide", 0.2, None, "DL", "low", "L5", "Brand E"),
    }


@pytest.mark.parametrize("name", ["scores.csv.gz", "scores.csv"])
def test_gzip_is_told_by_its_magic_bytes(tmp_path: Path, market: Market, name: str) -> None:
    path = write_csv(tmp_path / name, SCORES, scores_rows(), compress=True)
    result = predictions_import(path=path, market_code="IN")
    assert result.inserted == 3
    assert stored(market)[("DB00480", "myeloid leukemia")] == ("Lenalidomide", 0.9949, 1, "DL", "", "", "")


# --- idempotence and updates ---------------------------------------------------------------------


def test_second_import_of_the_same_file_changes_nothing(tmp_path: Path, market: Market) -> None:
    path = write_csv(tmp_path / "merged.csv", MERGED, merged_rows(400))
    first = predictions_import(path=path, market_code="IN")
    before = stored(market)
    imported_at = dict(Prediction.objects.values_list("pk", "imported_at"))
    second = predictions_import(path=path, market_code="IN")
    assert (second.inserted, second.updated, second.unchanged, second.drugs_created) == (0, 0, first.distinct, 0)
    assert stored(market) == before
    assert dict(Prediction.objects.values_list("pk", "imported_at")) == imported_at
    assert ImportRun.objects.get(pk=second.run_id).status == ImportRun.Status.UNCHANGED


def test_a_changed_score_is_updated_and_a_new_row_inserted(tmp_path: Path, market: Market) -> None:
    predictions_import(path=write_csv(tmp_path / "v1.csv", SCORES, scores_rows()), market_code="IN")
    rows = scores_rows()
    rows[1][3] = "0.6"
    rows.append(["DB00480", "Lenalidomide", "follicular lymphoma", "0.4", "4", "DL"])
    result = predictions_import(path=write_csv(tmp_path / "v2.csv", SCORES, rows), market_code="IN")
    assert (result.inserted, result.updated, result.unchanged) == (1, 1, 2)
    assert stored(market)[("DB00480", "mantle cell lymphoma")][1] == 0.6
    assert Prediction.objects.count() == 4


@pytest.fixture(params=["native", "portable"])
def upsert_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test through COPY and the PostgreSQL upsert, and through the portable fallback (same on SQLite)."""
    if request.param == "portable":
        monkeypatch.setattr(prediction_import, "_use_copy", lambda: False)
    return str(request.param)


AML_SCORES = [["DB00480", "Lenalidomide", "aml", "0.9", "1", "DL"]]
AML_KG = [["TW-001", "Revlimid", "Lenalidomide", "DB00480", "aml", "KG"]]


@pytest.mark.parametrize(
    ("first", "second"),
    [((SCORES, AML_SCORES), (KG, AML_KG)), ((KG, AML_KG), (SCORES, AML_SCORES))],
    ids=["kg after scores", "scores after kg"],
)
def test_a_second_shape_keeps_what_it_lacks_and_merges_the_source(
    tmp_path: Path, market: Market, upsert_path: str, first: tuple, second: tuple
) -> None:
    first_path = write_csv(tmp_path / "first.csv", *first)
    second_path = write_csv(tmp_path / "second.csv", *second)
    predictions_import(path=first_path, market_code="IN")
    result = predictions_import(path=second_path, market_code="IN")
    assert (result.inserted, result.updated, result.unchanged) == (0, 1, 0)
    assert stored(market) == {("DB00480", "aml"): ("Lenalidomide", 0.9, 1, "KG+DL", "", "TW-001", "Revlimid")}
    for path in (second_path, first_path):  # each file again now changes nothing
        again = predictions_import(path=path, market_code="IN")
        assert (again.inserted, again.updated, again.unchanged) == (0, 0, 1)
    assert stored(market)[("DB00480", "aml")][3] == "KG+DL"


def test_blank_values_keep_the_stored_ones_and_a_kg_dl_source_stays(
    tmp_path: Path, market: Market, upsert_path: str
) -> None:
    merged = [["L1", "Brand A", "Lenalidomide", "DB00480", "aml", "1", "1", "0.8", "KG + DL", "high"]]
    predictions_import(path=write_csv(tmp_path / "merged.csv", MERGED, merged), market_code="IN")
    blank = [["", "", "Lenalidomide", "DB00480", "aml", "", "", "", "DL", ""]]
    result = predictions_import(path=write_csv(tmp_path / "blank.csv", MERGED, blank), market_code="IN")
    assert (result.updated, result.unchanged) == (0, 1)
    assert stored(market) == {("DB00480", "aml"): ("Lenalidomide", 0.8, None, "KG+DL", "high", "L1", "Brand A")}
    newer = [["L2", "Brand B", "Lenalidomide", "DB00480", "aml", "1", "1", "0.7", "KG", "low"]]
    result = predictions_import(path=write_csv(tmp_path / "newer.csv", MERGED, newer), market_code="IN")
    assert (result.updated, result.unchanged) == (1, 0)
    assert stored(market) == {("DB00480", "aml"): ("Lenalidomide", 0.7, None, "KG+DL", "low", "L2", "Brand B")}


def test_new_and_changed_rows_in_a_market_that_has_rows(tmp_path: Path, market: Market, upsert_path: str) -> None:
    predictions_import(path=write_csv(tmp_path / "v1.csv", SCORES, scores_rows()), market_code="IN")
    imported_at = dict(Prediction.objects.values_list("disease", "imported_at"))
    rows = scores_rows()
    rows[0][3], rows[0][4] = "0.95", "9"
    rows.append(["DB00480", "Lenalidomide", "follicular lymphoma", "0.4", "4", "KG"])
    result = predictions_import(path=write_csv(tmp_path / "v2.csv", SCORES, rows), market_code="IN")
    assert (result.distinct, result.inserted, result.updated, result.unchanged) == (4, 1, 1, 2)
    assert stored(market)[("DB00480", "myeloid leukemia")] == ("Lenalidomide", 0.95, 9, "DL", "", "", "")
    assert stored(market)[("DB00480", "follicular lymphoma")] == ("Lenalidomide", 0.4, 4, "KG", "", "", "")
    after = dict(Prediction.objects.values_list("disease", "imported_at"))
    assert after["mantle cell lymphoma"] == imported_at["mantle cell lymphoma"]  # untouched rows keep their time
    assert after["myeloid leukemia"] > imported_at["myeloid leukemia"]


def test_awkward_text_survives_staging(tmp_path: Path, market: Market, upsert_path: str) -> None:
    diseases = ['tab\there, back\\slash \\N "quoted"\nsecond line, 白血病', "end marker\n\\.\nnext line"]
    rows = [["DB00480", "Lenalidomide", disease, "0.5", str(rank), "DL"] for rank, disease in enumerate(diseases, 1)]
    path = write_csv(tmp_path / "odd.csv", SCORES, rows)
    predictions_import(path=path, market_code="IN")
    assert sorted(Prediction.objects.values_list("disease", flat=True)) == sorted(diseases)
    assert predictions_import(path=path, market_code="IN").rows_written == 0


def test_predictions_of_another_market_are_left_alone(tmp_path: Path, market: Market) -> None:
    make_market("CA", "Canada")
    path = write_csv(tmp_path / "scores.csv", SCORES, scores_rows())
    predictions_import(path=path, market_code="CA")
    result = predictions_import(path=path, market_code="IN")
    assert result.inserted == 3
    assert Prediction.objects.filter(market__code="CA").count() == 3


# --- drugs ---------------------------------------------------------------------------------------


def test_drugs_are_matched_by_drugbank_id_then_by_name_ignoring_case(tmp_path: Path, market: Market) -> None:
    by_id = make_drug("Lenalidomide (Revlimid)", drugbank_id="DB00480")
    by_name = make_drug("METFORMIN")
    path = write_csv(tmp_path / "scores.csv", SCORES, scores_rows())
    result = predictions_import(path=path, market_code="IN")
    assert result.drugs_created == 0
    assert set(Prediction.objects.values_list("drug_id", flat=True)) == {by_id.pk, by_name.pk}
    by_name.refresh_from_db()
    assert by_name.drugbank_id == "DB00331"  # filled in from the file


def test_a_name_with_another_drugbank_id_is_refused(tmp_path: Path, market: Market) -> None:
    make_drug("Metformin", drugbank_id="DB99999")
    path = write_csv(tmp_path / "scores.csv", SCORES, scores_rows())
    with pytest.raises(PredictionImportError, match=r"scores\.csv, line 4, field drugbank_id: 'DB00331'"):
        predictions_import(path=path, market_code="IN")
    assert Prediction.objects.count() == 0
    assert Drug.objects.count() == 1


# --- bad input -----------------------------------------------------------------------------------


def _garbage(path: Path) -> Path:
    path.write_bytes(os.urandom(20 * 1024 * 1024))
    return path


def _garbage_text(path: Path) -> Path:
    rng = random.Random(1)
    alphabet = "abcdefghijklmnopqrstuvwxyz ,;\"'\n"
    path.write_text("".join(rng.choice(alphabet) for _ in range(2_000_000)), encoding="utf-8")
    return path


BAD_INPUTS = [
    pytest.param(
        lambda p: write_csv(p, SCORES, [*scores_rows(), ["DB1", "X", "y", "abc", "4", "DL"]]),
        r"bad\.csv, line 5, field txgnn_score: 'abc' is not a score",
        id="score abc",
    ),
    pytest.param(
        lambda p: write_csv(p, SCORES, [["DB1", "X", "y", "1.5", "1", "DL"]]),
        r"bad\.csv, line 2, field txgnn_score: '1.5'",
        id="score above 1",
    ),
    pytest.param(
        lambda p: write_csv(p, SCORES, [["DB1", "X", "y", "0.5", "first", "DL"]]),
        r"bad\.csv, line 2, field rank: 'first'",
        id="rank not a number",
    ),
    pytest.param(
        lambda p: write_csv(p, SCORES, [["DB1", "X", "y", "0.5", "²", "DL"]]),
        r"bad\.csv, line 2, field rank: '²'",
        id="rank a superscript digit",
    ),
    pytest.param(
        lambda p: write_csv(p, SCORES, [["DB1", "X", "y", "0.5", "1", "GNN"]]),
        r"bad\.csv, line 2, field source: 'GNN'",
        id="unknown source",
    ),
    pytest.param(
        lambda p: write_csv(p, SCORES, [["DB1", "X", "", "0.5", "1", "DL"]]),
        r"bad\.csv, line 2, field potential_indication",
        id="missing disease",
    ),
    pytest.param(
        lambda p: write_csv(p, [c for c in SCORES if c != "rank"], [["DB1", "X", "y", "0.5", "DL"]]),
        r"bad\.csv, line 1, field rank: missing column in the header",
        id="missing column",
    ),
    pytest.param(
        lambda p: write_csv(p, SCORES, [*scores_rows(), ["DB1", "X", "y"]]),
        r"bad\.csv, line 5, field txgnn_score: truncated row",
        id="truncated row",
    ),
    pytest.param(lambda p: (p.write_bytes(b""), p)[1], r"bad\.csv, line 1: the file is empty", id="empty file"),
    pytest.param(
        lambda p: write_csv(p, SCORES, []),
        r"bad\.csv, line 2: the file has a header but no data rows",
        id="header only",
    ),
    pytest.param(
        lambda p: (p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 100), p)[1],
        r"bad\.csv: binary content",
        id="binary file",
    ),
    pytest.param(_garbage, r"bad\.csv(, line \d+)?: (binary content|not UTF-8)", id="large garbage file"),
    pytest.param(_garbage_text, r"bad\.csv, line 1: the header is not a TxGNN prediction header", id="garbage text"),
    pytest.param(
        lambda p: (p.write_bytes((write_csv(p, MERGED, merged_rows(5000), compress=True).read_bytes())[:20_000]), p)[1],
        r"bad\.csv, line \d+: the compressed file is damaged or truncated",
        id="truncated gzip",
    ),
]


@pytest.mark.parametrize(("make_file", "message"), BAD_INPUTS)
def test_bad_input_names_file_line_and_field_and_writes_nothing(
    tmp_path: Path, market: Market, make_file, message
) -> None:
    path = make_file(tmp_path / "bad.csv")
    with pytest.raises(PredictionImportError, match=message):
        predictions_import(path=path, market_code="IN")
    assert Prediction.objects.count() == 0
    assert Drug.objects.count() == 0
    run = ImportRun.objects.get()
    assert run.status == ImportRun.Status.FAILED
    assert run.error.startswith("bad.csv")
    assert run.finished_at is not None


def test_unknown_market_is_refused_before_reading(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "scores.csv", SCORES, scores_rows())
    with pytest.raises(Exception, match="Unknown market code 'ZZ'"):
        predictions_import(path=path, market_code="ZZ")
    assert ImportRun.objects.count() == 0


def test_a_curator_of_the_market_imports_and_is_recorded(tmp_path: Path, market: Market) -> None:
    curator = make_user("carla", Role.CURATOR, markets=[market])
    result = predictions_import(path=write_csv(tmp_path / "s.csv", SCORES, scores_rows()), market_code="IN", by=curator)
    assert ImportRun.objects.get(pk=result.run_id).created_by == curator


@pytest.mark.parametrize("roles", [(Role.CURATOR,), (Role.REVIEWER,)], ids=["curator elsewhere", "reviewer"])
def test_others_may_not_import_predictions(tmp_path: Path, market: Market, roles: tuple[Role, ...]) -> None:
    elsewhere = make_market("CA", "Canada")
    user = make_user(None, *roles, markets=[elsewhere] if roles == (Role.CURATOR,) else [market])
    with pytest.raises(PermissionDenied):
        predictions_import(path=write_csv(tmp_path / "s.csv", SCORES, scores_rows()), market_code="IN", by=user)
    assert Prediction.objects.count() == 0


# --- the command ---------------------------------------------------------------------------------


def test_command_prints_counts_and_speed(tmp_path: Path, market: Market) -> None:
    path = write_csv(tmp_path / "scores.csv", SCORES, scores_rows())
    out = io.StringIO()
    call_command("import_predictions", str(path), market="IN", no_progress=True, stdout=out)
    text = out.getvalue()
    assert "3 rows" in text
    assert "inserted 3, updated 0, unchanged 0" in text
    assert "rows/s" in text


def test_command_turns_bad_input_into_a_command_error(tmp_path: Path, market: Market) -> None:
    path = write_csv(tmp_path / "bad.csv", SCORES, [["DB1", "X", "y", "abc", "1", "DL"]])
    with pytest.raises(CommandError, match=r"bad\.csv, line 2, field txgnn_score: 'abc'"):
        call_command("import_predictions", str(path), market="IN", no_progress=True, stdout=io.StringIO())


# --- COPY path against the portable fallback -----------------------------------------------------


@pytest.mark.postgres
def test_copy_path_and_fallback_store_the_same_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy_market, fallback_market = make_market("IN", "India"), make_market("CA", "Canada")
    path = write_csv(tmp_path / "merged.csv.gz", MERGED, merged_rows(20_000), compress=True)
    by_copy = predictions_import(path=path, market_code="IN")
    monkeypatch.setattr(prediction_import, "_use_copy", lambda: False)
    by_fallback = predictions_import(path=path, market_code="CA")
    assert by_copy.rows_total == by_fallback.rows_total == 20_000
    assert by_copy.distinct == by_fallback.distinct == by_copy.inserted == by_fallback.inserted
    assert by_copy.duplicates > 1000  # the file does exercise the duplicate rule
    assert "check foreign keys" in by_copy.phases  # the deferred checks are timed, not hidden in the commit
    assert stored(copy_market) == stored(fallback_market)
    # And each path is idempotent on its own.
    assert predictions_import(path=path, market_code="IN").rows_written == 0
    assert predictions_import(path=path, market_code="CA").rows_written == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_imports_of_one_market_at_once_both_succeed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The second waits for the first (an advisory lock), then finds its rows: no duplicate-key failure."""
    market = make_market("IN", "India")
    make_drug("Lenalidomide", drugbank_id="DB00480")
    make_drug("Metformin", drugbank_id="DB00331")
    both_staged = threading.Barrier(2, timeout=30)
    stage_drug_map = prediction_import._stage_drug_map

    def stage_then_wait(cursor, drug_ids):  # both imports have staged their rows before either writes
        stage_drug_map(cursor, drug_ids)
        both_staged.wait()

    monkeypatch.setattr(prediction_import, "_stage_drug_map", stage_then_wait)
    results: dict[str, object] = {}

    def run(name: str, rows: list[list[object]]) -> None:
        try:
            path = write_csv(tmp_path / f"{name}.csv", SCORES, rows)
            results[name] = predictions_import(path=path, market_code="IN")
        except Exception as exc:
            results[name] = exc
        finally:
            connection.close()

    rows = scores_rows()
    threads = [threading.Thread(target=run, args=(name, rows)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(isinstance(r, prediction_import.PredictionImportResult) for r in results.values()), results
    assert sorted((r.inserted, r.unchanged) for r in results.values()) == [(0, 3), (3, 0)]  # type: ignore[attr-defined]
    assert Prediction.objects.filter(market=market).count() == 3
