"""The dossier importer: the seed into the data model, idempotence, both forms, and all-or-nothing."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.management import CommandError, call_command
from django.db import DataError, models

from dossiers.models import (
    Candidate,
    CandidatePublication,
    CandidateTrial,
    ClinicalTrial,
    DataGap,
    Decision,
    Dossier,
    Drug,
    DrugApproval,
    DrugInteraction,
    GuardrailCondition,
    ImportRun,
    Market,
    Publication,
    SafetyStatement,
)
from dossiers.report_parser import ReportError, fold_typography
from dossiers.services import dossier_import as dossier_import_module
from dossiers.services.dossier_import import dossier_import
from portal.roles import Role
from tests.factories import make_market, make_user

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "reports"
SEED = Path(settings.BASE_DIR) / "demo" / "IN-lenalidomide.txt"
SEED_MD = FIXTURES / "IN-lenalidomide.md"
# Fields that say where and when a row was written, not what it says.
VOLATILE = {"id", "origin_name", "origin_line", "retrieved_at", "created_at", "updated_at", "version"}


def import_seed(path: Path = SEED, **kwargs: Any):  # type: ignore[no-untyped-def]
    kwargs.setdefault("market_code", "IN")
    kwargs.setdefault("by", None)
    return dossier_import(path_or_file=path, file_name=path.name, **kwargs)


def dossier_tables() -> list[type[models.Model]]:
    return [model for model in apps.get_app_config("dossiers").get_models() if model is not ImportRun]


def row_counts() -> dict[str, int]:
    return {model.__name__: model._default_manager.count() for model in dossier_tables()}


def snapshot() -> dict[str, list[tuple]]:
    """Every dossiers row by content: foreign keys followed to natural keys, ids and provenance left out."""
    result = {}
    for model in dossier_tables():
        rows = []
        for obj in model._default_manager.all():
            values = []
            for field in model._meta.concrete_fields:
                if field.name in VOLATILE:
                    continue
                value = getattr(obj, field.name)
                values.append((field.name, str(value) if isinstance(value, models.Model) else value))
            rows.append(tuple(values))
        result[model.__name__] = sorted(rows, key=repr)
    return result


SEED_ROWS = {
    "Market": 1,
    "Drug": 1,
    "DrugApproval": 2,
    "Dossier": 1,
    "DrugInteraction": 14,
    "SafetyStatement": 3,
    "DataGap": 2,
    "Prediction": 0,
    "Candidate": 1,
    "GuardrailCondition": 7,
    "ClinicalTrial": 10,
    "Publication": 10,
    "CandidateTrial": 10,
    "CandidatePublication": 10,
}


def test_seed_import_writes_every_table() -> None:
    result = import_seed()
    assert result.status == ImportRun.Status.SUCCEEDED
    counts = row_counts()
    assert {name: counts[name] for name in SEED_ROWS} == SEED_ROWS


def test_seed_import_records_its_run() -> None:
    import_seed()
    run = ImportRun.objects.get()
    assert (run.kind, run.file_name, run.rows_total, run.rows_written) == ("dossier", "IN-lenalidomide.txt", 48, 72)
    assert len(run.sha256) == 64 and run.market and run.market.code == "IN"


def test_seed_values_land_in_their_fields() -> None:
    import_seed()
    market = Market.objects.get()
    assert (market.code, market.name, market.registration_term) == ("IN", "India", "registrations")
    dossier = Dossier.objects.select_related("drug").get()
    assert dossier.drug.name == "Lenalidomide" and dossier.drug.original_indications.startswith("Multiple myeloma")
    assert (dossier.market_status, dossier.registration_count) == (Dossier.MarketStatus.NOT_MARKETED, 0)
    assert (dossier.reported_indication_count, dossier.interaction_total) == (6, 347)
    assert dossier.emetogenicity == "Low" and dossier.has_cytotoxicity
    assert "from the EMA under comparable indications" in dossier.market_information
    candidate = Candidate.objects.get()
    assert (candidate.disease, candidate.txgnn_score, candidate.evidence_level) == ("Myeloid Leukemia", 0.9949, "L2")
    assert candidate.recommended_decision == Decision.GUARDRAILS
    assert candidate.status == Candidate.Status.PREDICTED
    assert (candidate.trials_reported_total, candidate.trials_total_capped) == (50, True)
    assert (candidate.publications_reported_total, candidate.publications_total_capped) == (20, True)
    severities = list(DrugInteraction.objects.values_list("severity", flat=True))
    assert (severities.count("major"), severities.count("moderate"), severities.count("unknown")) == (2, 2, 10)
    assert set(SafetyStatement.objects.values_list("kind", flat=True)) == {SafetyStatement.Kind.BOXED_WARNING}
    gap = DataGap.objects.get(code="DG001")
    assert (gap.severity, gap.status) == (DataGap.Severity.BLOCKING, DataGap.Status.OPEN)
    approval = DrugApproval.objects.get(agency="US FDA")
    assert approval.indications.startswith("multiple myeloma")


def test_evidence_rows_carry_provenance_and_position() -> None:
    import_seed()
    trial = ClinicalTrial.objects.get(nct_id="NCT01522976")
    assert (trial.phase, trial.status, trial.enrollment) == ("Phase 2/3", "Active, Not Recruiting", 282)
    assert (trial.origin, trial.origin_name, trial.origin_line) == ("import", "IN-lenalidomide.txt", 26)
    assert trial.retrieved_at is not None
    assert trial.provenance_label == "IN-lenalidomide.txt, line 26"
    links = list(CandidateTrial.objects.order_by("position").values_list("trial__nct_id", "position"))
    assert links[0] == ("NCT01029262", 0) and links[-1] == ("NCT00360672", 9)
    link = CandidatePublication.objects.get(publication__pmid="30271212")
    assert (link.tier, link.origin_line, link.key_findings[:20]) == (1, 37, "Systematic review an")
    for model in (DrugInteraction, SafetyStatement, DataGap, Publication, CandidatePublication):
        assert not model.objects.exclude(origin="import").exists(), model
        assert not model.objects.filter(origin_line__isnull=True).exists(), model


def test_import_twice_changes_nothing() -> None:
    import_seed()
    before, state = row_counts(), snapshot()
    second = import_seed()
    assert second.status == ImportRun.Status.UNCHANGED
    assert (second.total("created"), second.total("updated"), second.rows_written) == (0, 0, 0)
    assert row_counts() == before and snapshot() == state
    assert list(ImportRun.objects.order_by("pk").values_list("status", flat=True)) == ["succeeded", "unchanged"]


def folded(state: dict[str, list[tuple]]) -> dict[str, list[tuple]]:
    """A snapshot with straight quotes for curly ones: the seed writes ’ where its Markdown writes '."""
    return {
        table: [tuple((k, fold_typography(v) if isinstance(v, str) else v) for k, v in row) for row in rows]
        for table, rows in state.items()
    }


def test_text_and_markdown_give_the_same_database_state() -> None:
    import_seed(SEED)
    from_text = snapshot()
    assert "Lenalidomide’s established activity" in Candidate.objects.get().rationale  # kept as written
    for model in reversed(dossier_tables()):
        model._default_manager.all().delete()
    import_seed(SEED_MD)
    assert snapshot() != from_text and folded(snapshot()) == folded(from_text)
    from_markdown = snapshot()
    again = import_seed(SEED)  # and the text after the Markdown is the same dossier: nothing to write
    assert again.status == ImportRun.Status.UNCHANGED
    assert snapshot() == from_markdown  # a change of quote style alone is no change


def test_reimport_keeps_workflow_state_and_follows_the_report() -> None:
    import_seed()
    Candidate.objects.update(status=Candidate.Status.TRIAGED)
    GuardrailCondition.objects.filter(title="Regulatory pathway").update(status=GuardrailCondition.Status.MET)
    DataGap.objects.filter(code="DG001").update(status=DataGap.Status.RESOLVED)
    changed = (
        SEED.read_text(encoding="utf-8")
        .replace("| NCT00360672 | Phase 2 | Completed | 27 |", "| NCT00360672 | Phase 2 | Terminated | 27 |")
        .replace(
            "| NCT00065156 | Phase 2 | Completed | 148 | Landmark trial: lenalidomide monotherapy in "
            "transfusion-dependent MDS with del(5q) |\n",
            "",
        )
    )
    result = dossier_import(path_or_file=io.BytesIO(changed.encode()), file_name="v2.txt", market_code=None, by=None)
    assert result.status == ImportRun.Status.SUCCEEDED
    assert result.counts["Clinical Trials"]["updated"] == 1
    assert result.counts["Candidate Trials"]["deleted"] == 1
    assert ClinicalTrial.objects.get(nct_id="NCT00360672").status == "Terminated"
    assert ClinicalTrial.objects.get(nct_id="NCT00360672").origin_name == "v2.txt"
    assert ClinicalTrial.objects.filter(nct_id="NCT00065156").exists()  # stored once, only the link goes
    assert CandidateTrial.objects.count() == 9
    assert Candidate.objects.get().status == Candidate.Status.TRIAGED
    assert GuardrailCondition.objects.get(title="Regulatory pathway").status == GuardrailCondition.Status.MET
    assert DataGap.objects.get(code="DG001").status == DataGap.Status.RESOLVED


def test_trials_from_the_registry_are_not_overwritten() -> None:
    ClinicalTrial.objects.create(nct_id="NCT01029262", phase="Phase 3", status="Terminated", origin="source")
    import_seed()
    trial = ClinicalTrial.objects.get(nct_id="NCT01029262")
    assert (trial.status, trial.origin) == ("Terminated", "source")
    assert CandidateTrial.objects.filter(trial=trial).exists()


def test_existing_drug_is_matched_case_insensitively() -> None:
    Drug.objects.create(name="LENALIDOMIDE")
    import_seed()
    assert Drug.objects.count() == 1 and Dossier.objects.get().drug.name == "LENALIDOMIDE"


def _bad(old: str, new: str) -> bytes:
    text = SEED.read_text(encoding="utf-8")
    assert old in text
    return text.replace(old, new, 1).encode()


BAD_INPUTS: dict[str, tuple[Any, str]] = {
    "truncated table": (lambda: _bad("| Completed | 27 | Lenalidomide in", "| Compl"), "line 33"),
    "score abc": (lambda: _bad("| 99.49% |", "| abc |"), 'field "TxGNN Prediction Score"'),
    "duplicate NCT row": (lambda: _bad("| NCT00843882 |", "| NCT01029262 |"), "listed twice"),
    "unknown section": (lambda: _bad("Disclaimer\n", "Appendix\nMore.\nDisclaimer\n"), "unknown section"),
    "empty file": (lambda: b"", "the file is empty"),
    "binary file": (lambda: b"\x7fELF\x02\x01\x01\x00" + bytes(512), "binary file"),
    "unknown decision": (lambda: _bad("Decision: Proceed with Guardrails", "Decision: Perhaps"), '"Perhaps"'),
    # Each used to reach PostgreSQL and fail there with a DataError naming no file, line or field.
    "phase over varchar(30)": (
        lambda: _bad("| Phase 2/3 |", "| Phase 2/3 (adaptive, seamless, multi-arm) |"),
        'line 26, field "Phase"',
    ),
    "study type over varchar(60)": (lambda: _bad("| Cohort study |", f"| {'Cohort ' * 9} |"), 'field "Type"'),
    "disease over varchar(300)": (
        lambda: _bad("| Myeloid Leukemia |", f"| {'x' * 301} |"),
        'line 11, field "Predicted New Indication"',
    ),
    "enrollment out of the integer range": (
        lambda: _bad("| Completed | 239 |", "| Completed | 99999999999 |"),
        'line 24, field "Enrollment": 99999999999 is out of range',
    ),
}


@pytest.mark.parametrize("case", BAD_INPUTS, ids=list(BAD_INPUTS))
def test_bad_input_writes_nothing_but_the_failed_run(case: str) -> None:
    make_bytes, fragment = BAD_INPUTS[case]
    with pytest.raises(ReportError) as caught:
        dossier_import(path_or_file=io.BytesIO(make_bytes()), file_name="bad.txt", market_code="IN", by=None)
    assert str(caught.value).startswith("bad.txt") and fragment in str(caught.value)
    assert set(row_counts().values()) == {0}
    run = ImportRun.objects.get()
    assert (run.status, run.file_name, run.error) == (ImportRun.Status.FAILED, "bad.txt", str(caught.value))


def test_fifty_megabytes_of_garbage_write_nothing(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.md"
    with garbage.open("wb") as out:
        out.truncate(50 * 1024 * 1024)
    with pytest.raises(ReportError, match="50.0 MB"):
        import_seed(garbage)
    assert set(row_counts().values()) == {0}
    assert ImportRun.objects.get().status == ImportRun.Status.FAILED


def test_failure_while_writing_rolls_everything_back(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(self: Any, candidate: Candidate) -> None:
        raise ReportError("seed.txt", 68, "To proceed", "simulated failure after most rows were written")

    monkeypatch.setattr(dossier_import_module._DossierWriter, "conditions", fail)
    with pytest.raises(ReportError, match="simulated failure"):
        import_seed()
    assert set(row_counts().values()) == {0}
    assert ImportRun.objects.get().status == ImportRun.Status.FAILED


def test_a_database_error_while_writing_is_recorded_as_a_failed_run(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(self: Any, candidate: Candidate) -> None:
        raise DataError("value too long for type character varying(200)")

    monkeypatch.setattr(dossier_import_module._DossierWriter, "conditions", fail)
    with pytest.raises(DataError):
        import_seed()
    assert set(row_counts().values()) == {0}
    run = ImportRun.objects.get()
    assert (run.status, run.error) == (
        ImportRun.Status.FAILED,
        "the database refused the report (DataError); nothing was written",
    )


def test_market_mismatch_is_refused() -> None:
    with pytest.raises(ReportError, match='not for market "CA"'):
        import_seed(market_code="CA")
    assert set(row_counts().values()) == {0}


def test_canadian_variant_creates_its_market_with_its_term() -> None:
    result = import_seed(FIXTURES / "CA-metformin.md", market_code=None)
    market = result.dossier.market
    assert (market.code, market.name, market.registration_term) == ("CA", "Canada", "DINs")
    assert result.candidate.txgnn_score is None and result.candidate.score_percent == "Not available"
    assert result.candidate.recommended_decision == Decision.GUARDRAILS
    assert not result.dossier.has_cytotoxicity
    assert result.dossier.registration_count == 112
    assert CandidateTrial.objects.count() == 0 and CandidatePublication.objects.count() == 2


def test_an_existing_market_is_found_by_name_when_the_country_is_unknown() -> None:
    text = SEED.read_text(encoding="utf-8").replace("India Market", "Atlantis Market")
    make_market("AT1", "Atlantis")
    result = dossier_import(path_or_file=io.BytesIO(text.encode()), file_name="a.txt", market_code=None, by=None)
    assert result.dossier.market.code == "AT1"
    with pytest.raises(ReportError, match="pass --market CODE"):
        dossier_import(
            path_or_file=io.BytesIO(text.replace("Atlantis", "Lemuria").encode()),
            file_name="l.txt",
            market_code=None,
            by=None,
        )


def test_importing_needs_a_curator_of_the_market() -> None:
    india = make_market("IN", "India")
    with pytest.raises(PermissionDenied):
        import_seed(by=make_user("viewer", Role.VIEWER, markets=[india]))
    with pytest.raises(PermissionDenied):
        import_seed(by=make_user("elsewhere", Role.CURATOR))
    assert ImportRun.objects.get().status == ImportRun.Status.FAILED  # the curator's attempt is recorded
    curator = make_user("curator", Role.CURATOR, markets=[india])
    assert import_seed(by=curator).run.created_by == curator


def test_a_curator_creating_a_market_becomes_its_member() -> None:
    curator = make_user("curator", Role.CURATOR)
    result = import_seed(FIXTURES / "TW-aspirin.txt", market_code=None, by=curator)
    assert list(result.dossier.market.members.all()) == [curator]


def test_command_prints_a_summary(capsys: pytest.CaptureFixture[str]) -> None:
    call_command("import_dossier", str(SEED), "--market", "IN")
    call_command("import_dossier", str(SEED_MD))
    out = capsys.readouterr().out
    assert "IN-lenalidomide.txt: Succeeded" in out and "IN-lenalidomide.md: Unchanged" in out
    assert "Clinical Trials        created  10" in out


def test_command_reports_bad_input_and_fails(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes(_bad("| Completed | 239 |", "| Completed | abc |"))
    with pytest.raises(CommandError) as caught:
        call_command("import_dossier", str(bad))
    assert str(caught.value) == 'bad.txt, line 24, field "Enrollment": "abc" is not a number'
    assert set(row_counts().values()) == {0}


def test_seed_import_query_count_is_bounded(django_assert_max_num_queries: Any) -> None:
    # One lookup and at most one write per row: about 2 x 72 rows, plus the run.
    with django_assert_max_num_queries(160):
        import_seed()
    with django_assert_max_num_queries(90):
        import_seed()


def test_other_indication_bullets_are_not_conditions_and_survive_export(tmp_path: Path) -> None:
    other = "Other predicted indications:\n- Mantle cell lymphoma: approved in the US\n"
    text = SEED.read_text(encoding="utf-8").replace("Disclaimer\n", other + "Disclaimer\n", 1)
    result = dossier_import(path_or_file=io.BytesIO(text.encode()), file_name="o.txt", market_code="IN", by=None)
    assert GuardrailCondition.objects.count() == 7
    assert result.candidate.conclusion_rationale.endswith("- Mantle cell lymphoma: approved in the US")
    out = io.StringIO()
    call_command("export_dossier", "lenalidomide", "--market", "IN", "--format", "md", stdout=out)
    exported = tmp_path / "exported.md"
    exported.write_text(out.getvalue(), encoding="utf-8")
    again = dossier_import(path_or_file=exported, file_name="exported.md", market_code="IN", by=None)
    assert again.status == ImportRun.Status.UNCHANGED, again.summary_lines()
    assert GuardrailCondition.objects.count() == 7


def test_a_cut_off_report_is_refused_and_deletes_nothing() -> None:
    import_seed()
    before, state = row_counts(), snapshot()
    cut = "".join(SEED.read_text(encoding="utf-8").splitlines(keepends=True)[:28])
    with pytest.raises(ReportError) as caught:
        dossier_import(path_or_file=io.BytesIO(cut.encode()), file_name="cut.txt", market_code="IN", by=None)
    assert str(caught.value).startswith('cut.txt, line 28, field "Conclusion and Next Steps": the report ends')
    assert row_counts() == before and snapshot() == state
    assert CandidateTrial.objects.count() == 10 and GuardrailCondition.objects.count() == 7
    assert ImportRun.objects.order_by("-pk").values_list("status", flat=True)[0] == ImportRun.Status.FAILED


# Real published reports (tests/fixtures/reports/SOURCES.md): each imports, and its export carries its facts.

PUBLISHED = {
    "CA-atorvastatin.md": ("atorvastatin", "CA"),
    "CA-cytarabine.md": ("cytarabine", "CA"),
    "ZA-lisinopril.md": ("lisinopril", "ZA"),
}


def _unlinked(text: str) -> str:
    return re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text).replace("**", "")


def published_facts(text: str) -> dict[str, Any]:
    """Read straight from the fixture, apart from the importer: table rows, decision and checklist items."""
    lines = [_unlinked(line).strip() for line in text.splitlines()]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines if line.startswith("|")]
    checklist, in_list = [], False
    for line in lines:
        if re.match(r"^To proceed, the following (?:is|would be) needed:$", line):
            in_list = True
        elif in_list and line.startswith("- "):
            checklist.append(line[2:])
        elif in_list and line:
            in_list = False
    return {
        "trials": [row for row in rows if re.fullmatch(r"NCT\d{8}", row[0])],
        "publications": [row for row in rows if row[0].isdigit() and len(row) == 5],
        "decision": next(line for line in lines if line.startswith("Decision: ")),
        "checklist": checklist,
    }


def _export_md(drug: str, market: str) -> str:
    out = io.StringIO()
    call_command("export_dossier", drug, "--market", market, "--format", "md", stdout=out)
    return out.getvalue()


@pytest.mark.parametrize("name", PUBLISHED)
def test_a_published_report_imports_and_exports_its_facts(name: str, tmp_path: Path) -> None:
    path = FIXTURES / name
    drug, market = PUBLISHED[name]
    result = import_seed(path, market_code=None)
    assert result.status == ImportRun.Status.SUCCEEDED and result.dossier.market.code == market
    facts = published_facts(path.read_text(encoding="utf-8"))
    exported = _export_md(drug, market)
    plain = _unlinked(exported)
    export_rows = {
        row[0]: row
        for row in (
            [c.strip() for c in line.strip("|").split("|")] for line in plain.splitlines() if line.startswith("|")
        )
    }
    for row in facts["trials"] + facts["publications"]:
        assert export_rows.get(row[0]) == row, row[0]
    assert len(facts["trials"]) == CandidateTrial.objects.count()
    assert len(facts["publications"]) == CandidatePublication.objects.count()
    assert facts["decision"] in plain
    assert facts["checklist"] and len(facts["checklist"]) == GuardrailCondition.objects.count()
    for item in facts["checklist"]:
        assert f"- {item}" + ("" if ": " in item else ":") in plain, item
    # The export is itself a report: importing it back changes nothing.
    again = tmp_path / f"exported-{name}"
    again.write_text(exported, encoding="utf-8")
    assert import_seed(again, market_code=market).status == ImportRun.Status.UNCHANGED


def test_published_reports_keep_their_section_prose_through_export() -> None:
    import_seed(FIXTURES / "CA-atorvastatin.md", market_code=None)
    import_seed(FIXTURES / "CA-cytarabine.md", market_code=None)
    atorvastatin, cytarabine = _export_md("atorvastatin", "CA"), _export_md("cytarabine", "CA")
    assert "35 trials are linked to this prediction." in atorvastatin
    assert "19 publications are linked." in atorvastatin
    assert "| 02295261 | APO-ATORVASTATIN |" in atorvastatin and "Number of DINs | 20 |" in atorvastatin
    assert "- **Homozygous FH:** Patients" not in atorvastatin  # bold went on import, the list stays
    assert "\n- Homozygous FH: Patients with little or no receptor function" in atorvastatin
    assert "All three trials were graded low relevance (C)." in cytarabine
    assert "No randomized controlled trials were found." in cytarabine
    assert "\n\nThe classification, emetogenicity and monitoring items reflect the drug class" in cytarabine
    assert "| 2515490 | VYXEOS |" in cytarabine
    assert "\n- Neuroblastoma has the most coherent preclinical signal" in cytarabine
    candidate = Candidate.objects.get(dossier__drug__name="Cytarabine")
    assert candidate.trials_note.startswith("All three trials") and candidate.publications_note.startswith("No random")
    assert candidate.dossier.cytotoxicity_note.startswith("The classification")


def test_the_report_fills_the_drug_facts_it_states() -> None:
    drug = import_seed().dossier.drug
    assert drug.synonyms == ["Revlimid"]
    assert drug.drug_class == "immunomodulatory drug (IMiD)"
    assert drug.mechanism_of_action == ""  # the seed says its MoA data is missing: nothing is made up
    assert import_seed(SEED_MD).status == ImportRun.Status.UNCHANGED


def test_curated_drug_facts_are_kept() -> None:
    Drug.objects.create(
        name="Lenalidomide",
        synonyms=["CC-5013", "REVLIMID"],
        drug_class="Thalidomide analogue",
        mechanism_of_action="CRBN",
    )
    drug = import_seed().dossier.drug
    assert (drug.synonyms, drug.drug_class, drug.mechanism_of_action) == (
        ["CC-5013", "REVLIMID"],
        "Thalidomide analogue",
        "CRBN",
    )
    Drug.objects.update(synonyms=["CC-5013"])
    import_seed()
    assert Drug.objects.get().synonyms == ["CC-5013", "Revlimid"]  # added to, never replaced


def test_a_report_stating_no_class_blanks_nothing() -> None:
    Drug.objects.create(name="Lenalidomide", drug_class="IMiD")
    text = SEED.read_text(encoding="utf-8").replace("is an oral immunomodulatory drug (IMiD) approved", "was approved")
    dossier_import(path_or_file=io.BytesIO(text.encode()), file_name="x.txt", market_code="IN", by=None)
    assert Drug.objects.get().drug_class == "IMiD"
