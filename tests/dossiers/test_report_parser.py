"""The dossier report parser: the seed in both forms, published variants, and bad input."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.conf import settings

from dossiers.models import Decision, Dossier, DrugInteraction, SafetyStatement
from dossiers.report_parser import (
    MAX_REPORT_BYTES,
    ParsedDossier,
    ReportError,
    fold_typography,
    parse_decision,
    parse_report,
    parse_report_text,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "reports"
SEED = Path(settings.BASE_DIR) / "demo" / "IN-lenalidomide.txt"  # the seed, byte for byte
SEED_MD = FIXTURES / "IN-lenalidomide.md"  # its published Markdown

SEED_TRIALS = [
    ("NCT01029262", "Phase 3", "Completed", 239, "Lenalidomide vs. placebo in transfusion-dependent, lower-risk MDS"),
    ("NCT00843882", "Phase 3", "Active, Not Recruiting", 247, "Lenalidomide alone vs. with epoetin alfa"),
    ("NCT01522976", "Phase 2/3", "Active, Not Recruiting", 282, "Azacitidine ± lenalidomide or vorinostat"),
    ("NCT01358734", "Phase 2", "Completed", 88, "Lenalidomide vs. AZA vs. AZA + lenalidomide"),
    ("NCT01743859", "Phase 2", "Completed", 37, "Sequential azacitidine + lenalidomide"),
    ("NCT03118466", "Phase 2", "Completed", 41, "MEC chemotherapy + lenalidomide"),
    ("NCT00957385", "Phase 2", "Completed", 24, "Lenalidomide maintenance in AML patients ≥60 years"),
    ("NCT00065156", "Phase 2", "Completed", 148, "Landmark trial: lenalidomide monotherapy"),
    ("NCT02472691", "Phase 2", "Completed", 50, "Azacitidine + lenalidomide + donor lymphocyte infusions"),
    ("NCT00360672", "Phase 2", "Completed", 27, "Lenalidomide in relapsed/refractory AML or high-risk MDS"),
]
SEED_PUBLICATIONS = [
    ("30271212", 2018, "Meta-analysis", "Cancer Manag Res"),
    ("31221030", 2019, "Meta-analysis", "Hematology"),
    ("37288607", 2023, "Review", "Am J Hematol"),
    ("37874917", 2023, "Review", "Blood"),
    ("23644421", 2013, "Review", "Leukemia"),
    ("23316859", 2013, "Review", "Expert Opin Investig Drugs"),
    ("37259567", 2023, "Prospective study", "Haematologica"),
    ("37435080", 2023, "Prospective study", "Front Immunol"),
    ("39881283", 2025, "Basic science", "Cell Mol Biol Lett"),
    ("35512188", 2022, "Cohort study", "Blood"),
]


@pytest.fixture(scope="module")
def seed() -> ParsedDossier:
    return parse_report(SEED, file_name="seed.txt")


def seed_text() -> str:
    return SEED.read_text(encoding="utf-8")


def test_seed_header_market_and_overview(seed: ParsedDossier) -> None:
    assert seed.drug == "Lenalidomide"
    assert seed.title == "Lenalidomide: From Multiple Myeloma / MDS to Myeloid Leukemia"
    assert seed.reported_indication_count == 6
    assert (seed.market_name, seed.market_code, seed.registration_term) == ("India", "IN", "registrations")
    assert seed.market_status == Dossier.MarketStatus.NOT_MARKETED
    assert seed.registration_count == 0
    assert seed.disease == "Myeloid Leukemia"
    assert seed.original_indication.startswith("Multiple myeloma; MDS with del(5q)")
    assert seed.txgnn_score == 0.9949
    assert seed.evidence_level == "L2"  # the body's level; the header's L5 is the page's, not the candidate's
    assert seed.decision == Decision.GUARDRAILS
    assert [item.item for item in seed.quick_overview][4:6] == ["India Market Status", "Number of Registrations"]


def test_seed_reported_totals_are_page_caps(seed: ParsedDossier) -> None:
    assert (seed.trials_reported_total, seed.trials_total_capped) == (50, True)
    assert (seed.publications_reported_total, seed.publications_total_capped) == (20, True)


def test_seed_trials(seed: ParsedDossier) -> None:
    got = [(t.nct_id, t.phase, t.status, t.enrollment) for t in seed.trials]
    assert got == [row[:4] for row in SEED_TRIALS]
    for trial, expected in zip(seed.trials, SEED_TRIALS, strict=True):
        assert trial.key_findings.startswith(expected[4])
    assert [t.line for t in seed.trials] == list(range(24, 34))


def test_seed_publications(seed: ParsedDossier) -> None:
    assert [(p.pmid, p.year, p.study_type, p.journal) for p in seed.publications] == SEED_PUBLICATIONS
    assert seed.publications[-1].key_findings.endswith("therapy-related myeloid neoplasms — safety signal")
    assert seed.publications[0].line == 37


def test_seed_cytotoxicity(seed: ParsedDossier) -> None:
    fields = [row.field_name for row in seed.cytotoxicity]
    assert fields == [
        "cytotoxicity_classification",
        "myelosuppression_risk",
        "emetogenicity",
        "monitoring_items",
        "handling_protection",
    ]
    assert seed.cytotoxicity[1].content.startswith("High — neutropenia")  # bold stripped in Markdown too
    assert seed.cytotoxicity[2].content == "Low"


def test_seed_safety(seed: ParsedDossier) -> None:
    by_severity = {group.severity: group for group in seed.interactions}
    assert by_severity[DrugInteraction.Severity.MAJOR].names == ("Rosuvastatin", "Simvastatin")
    assert by_severity[DrugInteraction.Severity.MAJOR].note.startswith("risk of increased statin plasma")
    assert by_severity[DrugInteraction.Severity.MODERATE].names == ("Eliglustat", "Naltrexone")
    unknown = by_severity[DrugInteraction.Severity.UNKNOWN]
    assert len(unknown.names) == 10 and unknown.names[-1] == "Rosiglitazone" and unknown.and_others
    assert "others" not in [name.lower() for name in unknown.names]
    assert seed.interaction_total == 347
    assert [row.text for row in seed.boxed_warnings] == [
        "myelosuppression",
        "deep vein thrombosis/pulmonary embolism (especially when combined with dexamethasone)",
        "embryo-fetal toxicity (absolute contraindication in pregnancy)",
    ]
    assert seed.safety_note.startswith("Detailed warnings and contraindications were not available")
    assert "Black Box" not in seed.safety_note
    assert [(g.code, g.severity) for g in seed.data_gaps] == [("DG001", "blocking"), ("DG002", "medium")]


def test_seed_market_information_and_approvals(seed: ParsedDossier) -> None:
    assert seed.market_information.startswith("Lenalidomide is not registered or marketed in India.")
    assert "compassionate use programs" in seed.market_information
    assert [(a.agency, a.indications) for a in seed.approvals] == [
        ("US FDA", "multiple myeloma, del(5q) MDS, mantle cell lymphoma, and follicular/marginal zone lymphoma"),
        ("EMA", "comparable indications"),
    ]


def test_seed_conclusion(seed: ParsedDossier) -> None:
    assert seed.conclusion_rationale.startswith("Lenalidomide has robust clinical evidence")
    assert [(c.title, c.category) for c in seed.conditions] == [
        ("Regulatory pathway", "regulatory"),
        ("Safety documentation", "safety"),
        ("Subgroup stratification", "clinical"),
        ("Myelosuppression management plan", "safety"),
        ("DVT/PE prophylaxis protocol", "safety"),
        ("Renal function assessment", "monitoring"),
        ("TP53 mutation screening", "clinical"),
    ]
    assert seed.conditions[0].detail.startswith("Establish an India access pathway")
    assert seed.disclaimer == (
        "This content is for research purposes only and does not constitute medical advice. "
        "Clinical validation is required before any clinical application."
    )


OTHER_INDICATIONS = (
    "Other predicted indications:\n"
    "- Mantle cell lymphoma: approved in the US, so not a repurposing candidate here\n"
    "- Follicular lymphoma: no trial in this market\n"
)


def test_only_bullets_after_the_to_proceed_lead_in_are_conditions() -> None:
    text = seed_text().replace("Disclaimer\n", OTHER_INDICATIONS + "Disclaimer\n", 1)
    parsed = parse_report_text(text, file_name="seed.txt")
    assert [c.title for c in parsed.conditions][-1] == "TP53 mutation screening"
    assert len(parsed.conditions) == 7
    assert parsed.conclusion_rationale.endswith(
        "\n\nOther predicted indications:\n\n"
        "- Mantle cell lymphoma: approved in the US, so not a repurposing candidate here\n"
        "- Follicular lymphoma: no trial in this market"
    )


def test_bullets_before_any_lead_in_are_prose() -> None:
    lead_in = "To proceed, the following is needed:\n"
    text = seed_text().replace(lead_in, "- A stray bullet: not a condition\n" + lead_in)
    parsed = parse_report_text(text, file_name="seed.txt")
    assert len(parsed.conditions) == 7
    assert parsed.conclusion_rationale.endswith("\n- A stray bullet: not a condition")


def test_text_and_markdown_give_the_same_dossier(seed: ParsedDossier) -> None:
    markdown = parse_report(SEED_MD, file_name="IN-lenalidomide.md")
    assert markdown.source_format == "markdown" and seed.source_format == "text"
    # The same facts; only the apostrophes differ (the seed writes ’, its published Markdown ').
    assert markdown.folded() == seed.folded()
    assert markdown != seed
    assert markdown.trials[0].line == 70  # lines differ, and are kept for provenance


def test_curly_quotes_are_kept_as_written(seed: ParsedDossier) -> None:
    markdown = parse_report(SEED_MD, file_name="IN-lenalidomide.md")
    assert "Lenalidomide’s established activity" in seed.rationale
    assert "Lenalidomide's established activity" in markdown.rationale
    assert fold_typography("‘a’ “b”") == "'a' \"b\""


def test_file_objects_and_bytes_are_read_too(seed: ParsedDossier) -> None:
    assert parse_report(io.BytesIO(SEED.read_bytes()), file_name="x.txt") == seed
    assert parse_report(SEED.read_bytes(), file_name="x.txt") == seed


def test_canadian_markdown_variant() -> None:
    parsed = parse_report(FIXTURES / "CA-metformin.md", file_name="CA-metformin.md")
    assert (parsed.market_name, parsed.market_code, parsed.registration_term) == ("Canada", "CA", "DINs")
    assert (parsed.registration_count, parsed.market_status) == (112, Dossier.MarketStatus.MARKETED)
    assert parsed.txgnn_score is None
    assert parsed.decision == Decision.GUARDRAILS  # "Conditional Go"
    assert parsed.trials == [] and parsed.no_trials_registered
    assert parsed.cytotoxicity == []
    assert [p.pmid for p in parsed.publications] == ["21262823", "31375517"]  # written as links
    assert parsed.publications[1].journal == "“Kidney Int”"  # curly quotes kept as written
    assert parsed.safety_note == "Please refer to the package insert for complete safety information."
    assert parsed.safety_statements == [] and parsed.data_gaps == []
    assert parsed.interaction_total == 1204
    assert [(g.severity, g.names) for g in parsed.interactions] == [
        ("major", ("Iodinated contrast",)),
        ("minor", ("Cimetidine",)),
    ]
    assert parsed.reported_indication_count == 3
    assert [c.title for c in parsed.conditions] == ["Trial design", "Renal dosing review"]


def test_taiwanese_text_variant() -> None:
    parsed = parse_report(FIXTURES / "TW-aspirin.txt", file_name="TW-aspirin.txt", market_code="tw")
    assert parsed.market_code == "TW"
    assert parsed.decision == Decision.NO_GO  # "Not Recommended"
    assert parsed.txgnn_score == 0.875
    assert [(t.nct_id, t.enrollment) for t in parsed.trials] == [("NCT00565708", 1121), ("NCT02301286", None)]
    assert [(s.kind, s.text) for s in parsed.safety_statements] == [
        (SafetyStatement.Kind.CONTRAINDICATION, "active peptic ulcer"),
        (SafetyStatement.Kind.CONTRAINDICATION, "haemophilia"),
        (SafetyStatement.Kind.CONTRAINDICATION, "children under 16 (Reye's syndrome)"),
    ]
    assert parsed.conditions == []


@pytest.mark.parametrize(
    ("spelling", "decision"),
    [
        ("Go", Decision.GO),
        ("Proceed", Decision.GO),
        ("Proceed with Guardrails", Decision.GUARDRAILS),
        ("Conditional Go", Decision.GUARDRAILS),
        ("Hold", Decision.HOLD),
        ("Research Question", Decision.RESEARCH),
        ("No-Go", Decision.NO_GO),
        ("No Go", Decision.NO_GO),
        ("Not Recommended", Decision.NO_GO),
    ],
)
def test_decision_spellings(spelling: str, decision: str) -> None:
    assert parse_decision(spelling, file_name="r.md", line=3) == decision


def test_unknown_decision_is_refused_by_name() -> None:
    text = seed_text().replace("| Recommended Decision | Proceed with Guardrails |", "| Recommended Decision | Maybe |")
    with pytest.raises(ReportError) as caught:
        parse_report_text(text, file_name="seed.txt")
    assert str(caught.value) == 'seed.txt, line 16, field "Decision": unknown decision "Maybe"'


def _replace(old: str, new: str) -> str:
    text = seed_text()
    assert old in text
    return text.replace(old, new, 1)


BAD_INPUTS = {
    "enrollment not a number": (
        lambda: _replace("| Completed | 239 |", "| Completed | abc |"),
        'seed.txt, line 24, field "Enrollment": "abc" is not a number',
    ),
    "score abc": (
        lambda: _replace("| 99.49% |", "| abc |"),
        'seed.txt, line 12, field "TxGNN Prediction Score": "abc" is not a score',
    ),
    "truncated table row": (
        lambda: _replace(
            "| NCT00360672 | Phase 2 | Completed | 27 | Lenalidomide in relapsed/refractory AML or high-risk MDS "
            "with chromosome 5 abnormalities |",
            "| NCT00360672 | Phase 2 | Compl",
        ),
        'seed.txt, line 33, field "Clinical Trial Evidence": table row has 3 cells, expected 5 (truncated?)',
    ),
    "duplicate NCT row": (
        lambda: _replace("| NCT00843882 |", "| NCT01029262 |"),
        'seed.txt, line 25, field "Trial Number": NCT01029262 is listed twice (first at line 24)',
    ),
    "duplicate PMID row": (
        lambda: _replace("| 31221030 |", "| 30271212 |"),
        'seed.txt, line 38, field "PMID": 30271212 is listed twice (first at line 37)',
    ),
    "unknown section heading": (
        lambda: _replace("Safety Considerations\n", "Pharmacokinetics\nHalf-life is 3 hours.\nSafety Considerations\n"),
        'seed.txt, line 58, field "section heading": unknown section heading "Pharmacokinetics"',
    ),
    "unknown market status": (
        lambda: _replace("✗ Not Marketed", "Sometimes"),
        'seed.txt, line 14, field "India Market Status": unknown market status "Sometimes"',
    ),
    "registrations not a number": (
        lambda: _replace("| Number of Registrations | 0 |", "| Number of Registrations | many |"),
        'seed.txt, line 15, field "Number of Registrations": "many" is not a number',
    ),
    "decisions disagree": (
        lambda: _replace("Decision: Proceed with Guardrails", "Decision: Hold"),
        'seed.txt, line 65, field "Decision": disagrees with the Quick Overview (line 16)',
    ),
    "empty file": (lambda: "", "seed.txt: the file is empty"),
    "whitespace only": (lambda: " \n\n  \n", "seed.txt: the file is empty"),
    "text that is no report": (
        lambda: "Dear colleague,\nplease find the minutes attached.\n",
        'seed.txt: not a dossier report: it has no "Quick Overview" section',
    ),
}


LONG = "x" * 301
# Values that fit no column of their table: PostgreSQL would refuse them with a DataError that names no line.
OUT_OF_BOUNDS = {
    "phase over 30 characters": (
        lambda: _replace("| Phase 2/3 |", "| Phase 2/3 (adaptive, seamless, multi-arm) |"),
        'seed.txt, line 26, field "Phase": "Phase 2/3 (adaptive, seamless, multi-arm…" is 41 characters long; '
        "at most 30 fit",
    ),
    "status over 40 characters": (
        lambda: _replace("| Active, Not Recruiting | 247 |", f"| {'Active ' * 7}| 247 |"),
        f'seed.txt, line 25, field "Status": "{("Active " * 6)[:40]}…" is 48 characters long; at most 40 fit',
    ),
    "study type over 60 characters": (
        lambda: _replace("| Cohort study |", f"| Cohort study{' of a registry' * 4} |"),
        f'seed.txt, line 46, field "Type": "{("Cohort study" + " of a registry" * 4)[:40]}…" is 68 characters long; '
        "at most 60 fit",
    ),
    "journal over 300 characters": (
        lambda: _replace("| Cancer Manag Res |", f"| {LONG} |"),
        f'seed.txt, line 37, field "Journal": "{"x" * 40}…" is 301 characters long; at most 300 fit',
    ),
    "disease over 300 characters": (
        lambda: _replace("| Myeloid Leukemia |", f"| {LONG} |"),
        f'seed.txt, line 11, field "Predicted New Indication": "{"x" * 40}…" is 301 characters long; at most 300 fit',
    ),
    "interacting drug over 200 characters": (
        lambda: _replace("Eliglustat,", f"{'Eliglustat' * 21},"),
        f'seed.txt, line 61, field "Drug Interactions": "{("Eliglustat" * 4)[:40]}…" is 210 characters long; '
        "at most 200 fit",
    ),
    "enrollment out of the integer range": (
        lambda: _replace("| Completed | 239 |", "| Completed | 99999999999 |"),
        'seed.txt, line 24, field "Enrollment": 99999999999 is out of range (0 to 2147483647)',
    ),
    "registrations out of the integer range": (
        lambda: _replace("| Number of Registrations | 0 |", "| Number of Registrations | 3000000000 |"),
        'seed.txt, line 15, field "Number of Registrations": 3000000000 is out of range (0 to 2147483647)',
    ),
    "year out of range": (
        lambda: _replace("| 30271212 | 2018 |", "| 30271212 | 20180 |"),
        'seed.txt, line 37, field "Year": 20180 is out of range (1800 to 2100)',
    ),
    "interaction total out of the integer range": (
        lambda: _replace("347 total interactions", "99999999999 total interactions"),
        'seed.txt, line 59, field "Drug Interactions": 99999999999 is out of range (0 to 2147483647)',
    ),
    "reported trial total out of the integer range": (
        lambda: _replace("with 50 clinical trials", "with 99999999999 clinical trials"),
        'seed.txt, line 6, field "One-Sentence Summary": 99999999999 is out of range (0 to 2147483647)',
    ),
    "indication count out of the integer range": (
        lambda: _replace("預測適應症: 6 個", "預測適應症: 99999999999 個"),
        'seed.txt, line 2, field "Predicted Indications": 99999999999 is out of range (0 to 2147483647)',
    ),
}
BAD_INPUTS.update(OUT_OF_BOUNDS)


@pytest.mark.parametrize("case", BAD_INPUTS, ids=list(BAD_INPUTS))
def test_bad_input_names_file_line_and_field(case: str) -> None:
    make_text, message = BAD_INPUTS[case]
    with pytest.raises(ReportError) as caught:
        parse_report_text(make_text(), file_name="seed.txt")
    assert str(caught.value) == message


def test_a_report_cut_off_at_a_line_boundary_is_refused() -> None:
    lines = seed_text().splitlines(keepends=True)
    cut = "".join(lines[:28])  # before the NCT03118466 row
    with pytest.raises(ReportError) as caught:
        parse_report_text(cut, file_name="seed.txt")
    assert str(caught.value) == (
        'seed.txt, line 28, field "Conclusion and Next Steps": the report ends at line 28 without its '
        '"Conclusion and Next Steps" and "Disclaimer" sections (cut off?)'
    )


def test_a_report_cut_before_its_disclaimer_is_refused() -> None:
    text = SEED_MD.read_text(encoding="utf-8")
    cut = text[: text.index("## Disclaimer")]
    with pytest.raises(ReportError) as caught:
        parse_report_text(cut, file_name="r.md")
    assert (caught.value.field, caught.value.message) == (
        "Disclaimer",
        f'the report ends at line {caught.value.line} without its "Disclaimer" section (cut off?)',
    )


def test_a_closing_section_cut_after_its_heading_is_refused() -> None:
    cut = seed_text()[: seed_text().index("Disclaimer\n") + len("Disclaimer\n")]
    with pytest.raises(ReportError) as caught:
        parse_report_text(cut, file_name="seed.txt")
    assert str(caught.value) == 'seed.txt, line 75, field "Disclaimer": the section is empty (cut off?)'


def test_unknown_heading_in_markdown() -> None:
    text = SEED_MD.read_text(encoding="utf-8").replace("## Safety Considerations", "## Pharmacokinetics", 1)
    with pytest.raises(ReportError) as caught:
        parse_report_text(text, file_name="r.md")
    assert (caught.value.line, caught.value.field) == (120, "section heading")
    assert caught.value.message == 'unknown section heading "Pharmacokinetics"'


def test_a_drug_name_longer_than_the_column_is_refused() -> None:
    name = "Lenalidomide" * 17
    text = SEED_MD.read_text(encoding="utf-8").replace("title: Lenalidomide", f"title: {name}")
    with pytest.raises(ReportError) as caught:
        parse_report_text(text.replace("# Lenalidomide\n", f"# {name}\n", 1), file_name="r.md")
    assert (
        str(caught.value) == f'r.md, line 10, field "drug name": "{name[:40]}…" is 204 characters long; at most 200 fit'
    )


def test_a_market_code_longer_than_the_column_is_refused() -> None:
    with pytest.raises(ReportError) as caught:
        parse_report(SEED, file_name="seed.txt", market_code="INDIA-SOUTH")
    assert str(caught.value) == 'seed.txt, field "market": "INDIA-SOUTH" is 11 characters long; at most 8 fit'


def test_market_code_must_agree_with_the_report() -> None:
    with pytest.raises(ReportError) as caught:
        parse_report(SEED, file_name="seed.txt", market_code="CA")
    assert str(caught.value) == 'seed.txt, field "market": the report is for India (IN), not for market "CA"'


def test_binary_file_is_refused() -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
    with pytest.raises(ReportError, match="binary file"):
        parse_report(png, file_name="image.png")


def test_non_utf8_file_is_refused_with_its_line() -> None:
    with pytest.raises(ReportError) as caught:
        parse_report("Lenalidomide\nCaf\xe9\n".encode("latin-1"), file_name="latin.txt")
    assert caught.value.line == 2 and "not UTF-8" in caught.value.message


def test_fifty_megabytes_of_garbage_are_refused_before_reading(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.txt"
    with garbage.open("wb") as out:
        chunk = b"lorem ipsum | garbage | 12 |\n" * 4096
        while out.tell() < 50 * 1024 * 1024:
            out.write(chunk)
    with pytest.raises(ReportError) as caught:
        parse_report(garbage, file_name="garbage.txt")
    assert "a dossier report is at most 2 MB" in str(caught.value)
    with garbage.open("rb") as stream:
        with pytest.raises(ReportError, match="at most 2 MB"):
            parse_report(stream, file_name="garbage.txt")
        assert stream.tell() == MAX_REPORT_BYTES + 1  # read no further than the limit


# Real published reports, copied verbatim (tests/fixtures/reports/SOURCES.md)


def test_published_canadian_atorvastatin_report() -> None:
    parsed = parse_report(FIXTURES / "CA-atorvastatin.md", file_name="CA-atorvastatin.md")
    assert (parsed.drug, parsed.disease, parsed.market_code) == ("Atorvastatin", "Familial hypercholesterolemia", "CA")
    assert (
        parsed.title == "Atorvastatin: From Lipid Lowering to Familial Hypercholesterolemia"
    )  # after the pharmacist heading
    assert (parsed.registration_term, parsed.registration_count, parsed.reported_indication_count) == ("DINs", 20, 6)
    assert (parsed.evidence_level, parsed.txgnn_score, parsed.decision) == ("L1", 0.9942, Decision.GUARDRAILS)
    # The rationale's list is kept as a list.
    assert parsed.rationale.endswith(
        "Response differs by subtype:\n\n"
        "- Heterozygous FH: Patients keep some functional LDL receptors, so statins work well.\n"
        "- Homozygous FH: Patients with little or no receptor function respond only partly. They usually need "
        "add-on drugs such as ezetimibe or PCSK9 inhibitors, and several of the trials below test exactly these "
        "combinations."
    )
    assert [t.nct_id for t in parsed.trials][:3] == ["NCT00134485", "NCT00136981", "NCT00827606"]
    assert (parsed.trials[-1].phase, parsed.trials[-1].status, parsed.trials[-1].enrollment) == (
        "Phase 3",
        "Completed",
        355,
    )
    assert parsed.trials_note.startswith("35 trials are linked to this prediction. The 10 most relevant")
    assert len(parsed.publications) == 10 and parsed.publications[0].study_type == "Cohort/Meta-analysis"
    assert parsed.publications_note.startswith("19 publications are linked. No randomized trial")
    assert [(r.number, r.product_name) for r in parsed.registrations] == [
        ("02457768", "ACH-ATORVASTATIN CALCIUM"),
        ("02346516", "ATORVASTATIN"),
        ("02392976", "MYLAN-ATORVASTATIN"),
        ("02481200", "BIO-ATORVASTATIN"),
        ("02295261", "APO-ATORVASTATIN"),
    ]
    assert parsed.market_information == (
        "20 licences are on record. Five are shown below. The records provided include no dosage form or approved "
        "indication text.\n\n| DIN | Product Name |\n|---|---|\n| 02457768 | ACH-ATORVASTATIN CALCIUM |\n"
        "| 02346516 | ATORVASTATIN |\n| 02392976 | MYLAN-ATORVASTATIN |\n| 02481200 | BIO-ATORVASTATIN |\n"
        "| 02295261 | APO-ATORVASTATIN |"
    )
    assert parsed.cytotoxicity == [] and parsed.cytotoxicity_note == ""
    assert parsed.safety_note == "Please refer to the package insert for safety information."
    assert [c.title for c in parsed.conditions] == [
        "Health Canada product monograph warnings and contraindications, which are not in the current data",
        "Confirmation of whether FH is already a labelled indication for the Canadian products",
        "Formal mechanism-of-action data from DrugBank",
        "Drug interaction review (none retrieved)",
        "A dosing and monitoring plan that separates heterozygous from homozygous FH, including children and "
        "adolescents",
    ]
    assert "Other predictions in the Evidence Pack: Other predicted indications" in parsed.conclusion_rationale


def test_published_canadian_cytarabine_report() -> None:
    parsed = parse_report(FIXTURES / "CA-cytarabine.md", file_name="CA-cytarabine.md")
    assert (parsed.disease, parsed.decision, parsed.registration_count) == ("Small cell lung carcinoma", "hold", 4)
    assert [(t.nct_id, t.phase, t.enrollment) for t in parsed.trials] == [
        ("NCT00863512", "Phase 3", 34),
        ("NCT03101579", "Phase 1", 13),
        ("NCT03507244", "Phase 1/2", 34),
    ]
    assert parsed.trials_note == "All three trials were graded low relevance (C). None tests cytarabine in SCLC."
    assert [p.pmid for p in parsed.publications][:3] == ["6095640", "2841844", "232239"]
    assert parsed.publications_note == "No randomized controlled trials were found."
    assert [r.product_name for r in parsed.registrations] == [
        "PMS-CYTARABINE",
        "CYTARABINE INJECTION",
        "CYTARABINE INJECTION",
        "VYXEOS",
    ]
    assert parsed.market_information.endswith(
        "| 2515490 | VYXEOS |\n\nDosage form, manufacturer and approved indication text were not provided for "
        "these licenses."
    )
    assert [row.field_name for row in parsed.cytotoxicity][0] == "cytotoxicity_classification"
    assert parsed.cytotoxicity[1].content.startswith("High. The retrieved high-dose cytarabine")
    assert parsed.cytotoxicity_note.startswith("The classification, emetogenicity and monitoring items reflect")
    # Only the three "To proceed" bullets are conditions; the other predicted indications are prose.
    assert [c.title for c in parsed.conditions] == [
        "Canadian package insert warnings and contraindications",
        "Mechanism of action data (for example from DrugBank)",
        "Direct, modern clinical evidence of cytarabine efficacy in SCLC, such as registered trials or prospective "
        "studies",
    ]
    assert "Other predicted indications:\n\n- Primary pulmonary lymphoma" in parsed.conclusion_rationale
    assert [(g.code, g.severity) for g in parsed.data_gaps] == [("DG002", "medium")]  # "mechanism-of-action"


def test_published_south_african_lisinopril_report() -> None:
    parsed = parse_report(FIXTURES / "ZA-lisinopril.md", file_name="ZA-lisinopril.md", market_code="za")
    assert (parsed.market_name, parsed.market_code) == ("South Africa", "ZA")
    assert (parsed.registration_term, parsed.registration_count) == ("SAHPRA registrations", 0)
    assert parsed.market_status == Dossier.MarketStatus.NOT_MARKETED
    assert parsed.trials == [] and parsed.no_trials_registered and parsed.trials_note == ""
    assert parsed.publications == [] and parsed.publications_note == ""
    assert (parsed.trials_reported_total, parsed.publications_reported_total) == (0, 0)
    assert parsed.registrations == [] and parsed.cytotoxicity == []
    assert parsed.safety_note.startswith("Please refer to the SAHPRA-approved Professional Information (PI)")
    assert len(parsed.conditions) == 4 and parsed.conditions[-1].category == "regulatory"


def test_a_market_table_that_is_no_licence_list_is_refused() -> None:
    text = (FIXTURES / "CA-cytarabine.md").read_text(encoding="utf-8").replace("| DIN | Product Name |", "| A | B |")
    with pytest.raises(ReportError) as caught:
        parse_report_text(text, file_name="c.md")
    assert (caught.value.line, caught.value.field) == (97, "Canada Market Information")
    assert 'expected a licence number and "Product Name"' in caught.value.message


def test_a_truncated_licence_row_is_refused() -> None:
    text = (FIXTURES / "CA-cytarabine.md").read_text(encoding="utf-8").replace("| 2515490 | VYXEOS |", "| 2515490 |")
    with pytest.raises(ReportError) as caught:
        parse_report_text(text, file_name="c.md")
    assert str(caught.value) == (
        'c.md, line 102, field "Canada Market Information": table row has 1 cells, expected 2 (truncated?)'
    )


# Drug facts the report states


def test_seed_drug_facts(seed: ParsedDossier) -> None:
    assert seed.synonyms == ["Revlimid"]  # "Lenalidomide (Revlimid®)", in the summary and the market section
    assert seed.drug_class == "immunomodulatory drug (IMiD)"  # "is an oral immunomodulatory drug (IMiD) approved…"


@pytest.mark.parametrize(
    ("first_sentence", "drug_class"),
    [
        (
            "Atorvastatin is a statin (HMG-CoA reductase inhibitor) that is marketed in Canada.",
            "statin (HMG-CoA reductase inhibitor)",
        ),
        ("Atorvastatin is an ACE inhibitor whose original approved indications are not on record.", "ACE inhibitor"),
        ("Atorvastatin is a nucleoside-analog chemotherapy drug.", "nucleoside-analog chemotherapy drug"),
        (
            "Atorvastatin is a steroidal, irreversible aromatase inhibitor originally used for x.",
            "steroidal, irreversible aromatase inhibitor",
        ),
        (
            "Atorvastatin (Lipitor®) is a second-generation synthetic statin, widely established for y.",
            "second-generation synthetic statin",
        ),
        # No "<drug> is a <class>" opening: nothing is guessed.
        ("Atorvastatin is registered in South Africa as an ingredient of three products.", ""),
        ("Atorvastatin is synthetic delta-9-tetrahydrocannabinol (THC), a cannabinoid.", ""),
        ("The statin atorvastatin is a lipid-lowering drug.", ""),
        ("Atorvastatin is a drug that many patients in many countries of the world take every single day.", "drug"),
        ("Atorvastatin is a long phrase of many more than eight words here that is no class.", ""),
    ],
)
def test_drug_class_only_from_a_plain_is_a_sentence(first_sentence: str, drug_class: str) -> None:
    text = (FIXTURES / "CA-atorvastatin.md").read_text(encoding="utf-8")
    old = "Atorvastatin is a statin (HMG-CoA reductase inhibitor) that is marketed in Canada for lowering cholesterol."
    parsed = parse_report_text(text.replace(old, first_sentence), file_name="a.md")
    assert parsed.drug_class == drug_class


def test_brand_names_with_a_registered_mark_become_synonyms() -> None:
    text = (FIXTURES / "CA-atorvastatin.md").read_text(encoding="utf-8")
    text = text.replace("Atorvastatin is a statin", "Atorvastatin (trade names Lipitor®, Atorlip™) is a statin")
    text = text.replace("Atorvastatin's mechanism", "Atorvastatin (Lipitor®)'s mechanism, unlike simvastatin (Zocor®),")
    parsed = parse_report_text(text, file_name="a.md")
    assert parsed.synonyms == ["Lipitor", "Atorlip"]  # Zocor® names another drug
    assert parse_report(FIXTURES / "CA-cytarabine.md", file_name="c.md").synonyms == []
