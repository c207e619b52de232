"""The seed round trip: import the seed report, export it, and find every fact of the seed in the export.

The facts are read from the seed file by the small reader below, independent of the importer's parser,
so that the importer never checks itself.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import transaction

from dossiers.report_parser import fold_typography

pytestmark = pytest.mark.django_db

SEED_NAME = "seed/000_3e1a30e9954c3f5a.txt"
MARKDOWN_NAME = "fixtures/reports/IN-lenalidomide.md"
SEED_SECTIONS = (
    "One-Sentence Summary",
    "Quick Overview",
    "Why is This Prediction Reasonable?",
    "Clinical Trial Evidence",
    "Literature Evidence",
    "India Market Information",
    "Cytotoxicity",
    "Safety Considerations",
    "Conclusion and Next Steps",
    "Disclaimer",
)
# Volatile or origin-specific keys that legitimately differ between two imports of the same report.
VOLATILE_KEYS = {"id", "created_at", "updated_at", "provenance", "version"}


# The repo carries byte-identical copies of the seed and its published Markdown (demo/ and
# tests/fixtures/), so the round trip runs in any clone; test_repo_copies_match_shared checks them.
REPO_COPIES = {
    SEED_NAME: "demo/IN-lenalidomide.txt",
    MARKDOWN_NAME: "tests/fixtures/reports/IN-lenalidomide.md",
}


def _shared_file(name: str) -> Path:
    return Path(settings.BASE_DIR) / REPO_COPIES[name]


def test_repo_copies_match_shared() -> None:
    shared = Path(os.environ.get("SHARED_DIR") or Path(settings.BASE_DIR).parent / "shared")
    if not shared.is_dir():
        pytest.skip(f"{shared} is not beside this clone; the copies were compared when they were made")
    for name, copy in REPO_COPIES.items():
        assert (shared / name).read_bytes() == (Path(settings.BASE_DIR) / copy).read_bytes(), name


# An independent reader of the seed's flattened text


@dataclass
class SeedFacts:
    """Every fact of the seed the export must carry, as the seed's own text spells it."""

    title: str = ""
    indication_count: str = ""
    sections: dict[str, list[str]] = field(default_factory=dict)
    overview: list[list[str]] = field(default_factory=list)
    trials: list[list[str]] = field(default_factory=list)
    publications: list[list[str]] = field(default_factory=list)
    cytotoxicity: list[list[str]] = field(default_factory=list)
    interactions: list[tuple[str, str, str]] = field(default_factory=list)  # severity, drug, note
    interaction_total: str = ""
    decision: str = ""
    checklist: list[tuple[str, str]] = field(default_factory=list)


def read_seed(text: str) -> SeedFacts:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    facts = SeedFacts(title=next(line for line in lines if re.match(r"^\w+: From .+ to .+$", line)))
    facts.indication_count = re.search(r"預測適應症:\s*(\d+)", text).group(1)  # type: ignore[union-attr]
    current = None
    for line in lines:
        if line in SEED_SECTIONS:
            current = line
            facts.sections[current] = []
        elif current:
            facts.sections[current].append(line)
    facts.overview = _rows(facts.sections["Quick Overview"])
    facts.trials = _rows(facts.sections["Clinical Trial Evidence"])
    facts.publications = _rows(facts.sections["Literature Evidence"])
    facts.cytotoxicity = _rows(facts.sections["Cytotoxicity"])
    _read_safety(facts)
    _read_conclusion(facts)
    return facts


def _rows(lines: list[str]) -> list[list[str]]:
    """Table body rows, without the header row and the |---| rule."""
    table = [[c.strip() for c in line.strip("|").split("|")] for line in lines if line.startswith("|")]
    return [row for row in table[1:] if not set("".join(row)) <= set("-: ")]


def _read_safety(facts: SeedFacts) -> None:
    for line in facts.sections["Safety Considerations"]:
        if match := re.search(r"(\d+) total interactions", line):
            facts.interaction_total = match.group(1)
        if match := re.match(r"^- (\w+) severity(?: \([^)]*\))?: (.+)$", line):
            names, _, note = match.group(2).partition(" — ")
            for name in names.split(", "):
                name = name.removeprefix("and ").strip()
                if name != "others":
                    facts.interactions.append((match.group(1), name, note))


def _read_conclusion(facts: SeedFacts) -> None:
    for line in facts.sections["Conclusion and Next Steps"]:
        if line.startswith("Decision: "):
            facts.decision = line.removeprefix("Decision: ")
        elif line.startswith("- "):
            title, _, detail = line[2:].partition(": ")
            facts.checklist.append((title, detail))


# Reading the export


def plain(markdown: str) -> str:
    """The export as text: links as their label, no emphasis; quotes as written (’ stays ’)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", markdown)
    text = text.replace("**", "")
    return re.sub(r"\*\(status: [a-z]+\)\*", "", text)


def export_rows(markdown: str) -> dict[str, list[str]]:
    """Every table row of the export keyed by its first cell."""
    rows = _rows([line for line in plain(markdown).splitlines() if line.startswith("|")])
    return {row[0]: row for row in rows}


def missing_facts(facts: SeedFacts, markdown: str) -> list[str]:
    """Each seed fact absent from the export, described so that a failure names it."""
    text, rows = plain(markdown), export_rows(markdown)
    missing: list[str] = []

    def row_facts(kind: str, seed_rows: list[list[str]], names: list[str]) -> None:
        for seed_row in seed_rows:
            exported = rows.get(seed_row[0])
            if exported is None:
                missing.append(f"{kind} {seed_row[0]}: no row")
                continue
            for name, want, got in zip(names, seed_row, exported, strict=True):
                if want != got:
                    missing.append(f"{kind} {seed_row[0]} {name}: seed {want!r}, export {got!r}")

    row_facts("overview", facts.overview, ["item", "value"])
    row_facts("trial", facts.trials, ["NCT", "phase", "status", "enrollment", "finding"])
    row_facts("publication", facts.publications, ["PMID", "year", "type", "journal", "finding"])
    row_facts("cytotoxicity", facts.cytotoxicity, ["item", "value"])
    lines = text.splitlines()
    for severity, name, note in facts.interactions:
        line = next((x for x in lines if x.startswith(f"- {severity} severity")), "")
        if not re.search(rf"[:,] {re.escape(name)}(,| —|$)", line):
            missing.append(f"interaction {name} ({severity}): not on the {severity} line {line!r}")
        if note and note not in line:
            missing.append(f"interaction {name}: note {note!r} not on the {severity} line")
    if f"{facts.interaction_total} total interactions" not in text:
        missing.append(f"interaction total {facts.interaction_total}")
    if f"Decision: {facts.decision}" not in text:
        missing.append(f"decision {facts.decision!r}")
    for title, detail in facts.checklist:
        if f"- {title}: {detail}" not in text:
            missing.append(f"checklist item {title!r}: {detail[:40]!r}…")
    return missing


def missing_prose(facts: SeedFacts, markdown: str) -> list[str]:
    """The title, header count and each paragraph of the seed's prose sections."""
    text = plain(markdown)
    missing = [] if f"# {facts.title}\n" in text else [f"title {facts.title!r}"]
    if f"Predicted Indications: {facts.indication_count}" not in text:
        missing.append(f"indication count {facts.indication_count}")
    prose = ("One-Sentence Summary", "Why is This Prediction Reasonable?", "India Market Information", "Disclaimer")
    for section in prose:
        missing += [f"{section}: {p[:50]!r}…" for p in facts.sections[section] if p not in text]
    return missing + _missing_safety_statements(facts, text)


def _missing_safety_statements(facts: SeedFacts, text: str) -> list[str]:
    """The safety note's sentences, and each boxed warning as its own item."""
    missing = []
    opening = "Known Black Box Warnings include: "
    exported = re.search(rf"{opening}(.+?\.)(?: |$)", text, re.M)
    exported_warnings = _top_level_items(exported.group(1).rstrip(".")) if exported else []
    for paragraph in facts.sections["Safety Considerations"]:
        if paragraph.startswith(("- ", "Drug Interactions:")):
            continue
        note, _, warnings = paragraph.partition(opening)
        missing += [f"safety note: {s!r}" for s in re.split(r"(?<=\.) ", note.strip()) if s and s not in text]
        for warning in _top_level_items(warnings.rstrip(".")):
            if warning not in exported_warnings:
                missing.append(f"boxed warning {warning!r}")
    return missing


def _top_level_items(text: str) -> list[str]:
    """Split "a, b (x, y), and c" on the commas outside parentheses."""
    items, depth, start = [], 0, 0
    for i, char in enumerate(text + ","):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            items.append(text[start:i].strip().removeprefix("and ").strip())
            start = i + 1
    return [item for item in items if item]


def _import(path: Path) -> None:
    call_command("import_dossier", str(path), "--market", "IN", stdout=StringIO())


def _export(fmt: str = "md") -> str:
    out = StringIO()
    call_command("export_dossier", "lenalidomide", "--market", "IN", "--format", fmt, stdout=out)
    return out.getvalue()


# The reader itself: it must see every fact, or the round trip would prove little.


def test_the_seed_reader_finds_every_fact() -> None:
    facts = read_seed(_shared_file(SEED_NAME).read_text(encoding="utf-8"))
    assert facts.title == "Lenalidomide: From Multiple Myeloma / MDS to Myeloid Leukemia"
    assert facts.indication_count == "6"
    assert len(facts.overview) == 7 and facts.overview[2] == ["TxGNN Prediction Score", "99.49%"]
    assert len(facts.trials) == 10 and facts.trials[2][:4] == [
        "NCT01522976",
        "Phase 2/3",
        "Active, Not Recruiting",
        "282",
    ]
    assert len(facts.publications) == 10 and facts.publications[-1][:4] == ["35512188", "2022", "Cohort study", "Blood"]
    assert len(facts.cytotoxicity) == 5
    assert len(facts.interactions) == 14
    assert ("Major", "Rosuvastatin", facts.interactions[0][2]) == facts.interactions[0]
    assert ("Unknown", "Rosiglitazone", "") in facts.interactions
    assert facts.interaction_total == "347"
    assert _top_level_items("a, b (c, d), and e") == ["a", "b (c, d)", "e"]
    assert facts.decision == "Proceed with Guardrails"
    assert len(facts.checklist) == 7 and facts.checklist[-1][0] == "TP53 mutation screening"


def test_the_fact_check_notices_a_missing_fact() -> None:
    facts = read_seed(_shared_file(SEED_NAME).read_text(encoding="utf-8"))
    markdown = _shared_file(MARKDOWN_NAME).read_text(encoding="utf-8")
    assert missing_facts(facts, markdown) == []  # the published form carries every fact
    broken = markdown.replace("| 239 |", "| 293 |").replace("Simvastatin", "Atorvastatin")
    assert missing_facts(facts, broken) == [
        "trial NCT01029262 enrollment: seed '239', export '293'",
        "interaction Simvastatin (Major): not on the Major line "
        "'- Major severity: Rosuvastatin, Atorvastatin — risk of increased statin plasma concentrations; "
        "consider dose reduction or switch to a less interactive statin'",
    ]


# The round trip


def test_seed_imported_twice_exports_every_fact() -> None:
    seed = _shared_file(SEED_NAME)
    _import(seed)
    _import(seed)
    markdown = _export()
    facts = read_seed(seed.read_text(encoding="utf-8"))
    assert missing_facts(facts, markdown) == []
    assert missing_prose(facts, markdown) == []
    # The seed's bracketed qualifier of a severity group survives, written where the seed has it.
    assert "**Unknown severity (clinical significance to be evaluated):** Metformin," in markdown


def test_markdown_form_gives_the_same_export() -> None:
    with transaction.atomic():
        _import(_shared_file(SEED_NAME))
        from_seed = _export(), _export("json")
        transaction.set_rollback(True)
    _import(_shared_file(MARKDOWN_NAME))
    from_markdown = _export(), _export("json")
    # The seed writes "Lenalidomide’s", its published Markdown "Lenalidomide's"; each export keeps its own,
    # and that is all that differs.
    assert "Lenalidomide’s established" in from_seed[0] and "Lenalidomide's established" in from_markdown[0]
    assert fold_typography(from_markdown[0]) == fold_typography(from_seed[0])
    assert _stable(fold_typography(from_markdown[1])) == _stable(fold_typography(from_seed[1]))


def _stable(text: str) -> Any:
    """The JSON export without ids, timestamps and provenance (file name and line differ by design)."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in VOLATILE_KEYS}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return strip(json.loads(text))


def test_the_portal_reimports_its_own_export_unchanged(tmp_path: Path) -> None:
    """An exported Markdown dossier (with its Data Gaps table and checklist statuses) imports back as is."""
    _import(_shared_file(SEED_NAME))
    first = _export(), _stable(_export("json"))
    exported = tmp_path / "exported.md"
    exported.write_text(first[0], encoding="utf-8")
    out = StringIO()
    call_command("import_dossier", str(exported), "--market", "IN", stdout=out)
    assert re.search(r"total\s+created\s+0\s+", out.getvalue()), out.getvalue()
    again = _export(), _stable(_export("json"))
    assert again[0].splitlines() == first[0].splitlines()
    assert again[1] == first[1]


def test_an_exported_data_gap_table_with_a_bad_severity_names_its_line(tmp_path: Path) -> None:
    _import(_shared_file(SEED_NAME))
    markdown = _export()
    broken = markdown.replace("| Blocking | Open |", "| Urgent | Open |")
    line = next(number for number, text in enumerate(broken.splitlines(), 1) if "| Urgent |" in text)
    path = tmp_path / "broken.md"
    path.write_text(broken, encoding="utf-8")
    with pytest.raises(CommandError, match=rf'broken.md, line {line}, field "Data Gaps": unknown severity "Urgent"'):
        call_command("import_dossier", str(path), "--market", "IN", stdout=StringIO())
