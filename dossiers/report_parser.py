"""Read a dossier report, flattened text or published Markdown, into typed rows; no database access.

Both forms of one report give equal `ParsedDossier` values up to the quote style (`folded()`): line
numbers are kept on every row for provenance but are left out of equality, and markup (bold, links,
kramdown attributes, HTML wrappers, rules, wrapped lines) is normalised away before anything is read.
Text is kept as written, curly quotes included: the seed writes "Lenalidomide’s" where its published
Markdown writes "Lenalidomide's", so those two compare equal only once folded.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields, is_dataclass, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any

import pycountry
import yaml
from django.db import models

from dossiers.models import (
    Candidate,
    ClinicalTrial,
    DataGap,
    Decision,
    Dossier,
    Drug,
    DrugInteraction,
    EvidenceLevel,
    GuardrailCondition,
    Market,
    Publication,
    SafetyStatement,
)

# A report is about 15 kB; anything past this is refused before it is decoded or parsed.
MAX_REPORT_BYTES = 2 * 1024 * 1024
# The published reports counted one search page: 50 trials from ClinicalTrials.gov and 20 PMIDs
# from PubMed. A reported total at or above its page size may have been cut off, so it is "≥ N".
TRIALS_PAGE_CAP = 50
PUBLICATIONS_PAGE_CAP = 20


def _max_length(model: type[models.Model], name: str) -> int:
    return model._meta.get_field(name).max_length or 0  # type: ignore[union-attr]


# Longest value each column takes, read from the models (as prediction_import.MAX_LENGTH does), so that a
# value too long is refused with its file, line and field instead of failing in the database.
MAX_LENGTH: dict[str, int] = {
    "drug": _max_length(Drug, "name"),
    "drug_class": _max_length(Drug, "drug_class"),
    "title": min(_max_length(Dossier, "title"), _max_length(Candidate, "title")),
    "disease": _max_length(Candidate, "disease"),
    "market": _max_length(Market, "name"),
    "market_code": _max_length(Market, "code"),
    "registration_term": _max_length(Market, "registration_term"),
    "phase": _max_length(ClinicalTrial, "phase"),
    "trial_status": _max_length(ClinicalTrial, "status"),
    "study_type": _max_length(Publication, "study_type"),
    "journal": _max_length(Publication, "journal"),
    "interacting_drug": _max_length(DrugInteraction, "interacting_drug"),
    "condition": _max_length(GuardrailCondition, "title"),
    "data_gap_code": _max_length(DataGap, "code"),
}
# Every number of a report lands in a PositiveIntegerField: PostgreSQL's integer holds at most 2**31 - 1.
MAX_INTEGER = 2_147_483_647
YEARS = (1800, 2100)

DECISION_SPELLINGS: dict[str, str] = {
    "go": Decision.GO,
    "proceed": Decision.GO,
    "proceed with guardrails": Decision.GUARDRAILS,
    "go with guardrails": Decision.GUARDRAILS,
    "conditional go": Decision.GUARDRAILS,
    "hold": Decision.HOLD,
    "on hold": Decision.HOLD,
    "research question": Decision.RESEARCH,
    "research": Decision.RESEARCH,
    "no go": Decision.NO_GO,
    "not recommended": Decision.NO_GO,
}

MARKET_STATUS_SPELLINGS: dict[str, str] = {
    "marketed": Dossier.MarketStatus.MARKETED,
    "not marketed": Dossier.MarketStatus.NOT_MARKETED,
    "unknown": Dossier.MarketStatus.UNKNOWN,
}

CYTOTOXICITY_ITEMS: dict[str, str] = {
    "cytotoxicity classification": "cytotoxicity_classification",
    "myelosuppression risk": "myelosuppression_risk",
    "emetogenicity classification": "emetogenicity",
    "emetogenicity": "emetogenicity",
    "monitoring items": "monitoring_items",
    "handling protection": "handling_protection",
}

# (code, severity, phrase): sentences the report generator writes when a source returned nothing.
DATA_GAP_PHRASES: tuple[tuple[str, str, str, str], ...] = (
    (
        "DG001",
        "blocking",
        r"detailed warnings and contraindications were not available",
        "Label warnings and contraindications were not retrieved.",
    ),
    (
        "DG002",
        "medium",
        r"detailed mechanism[- ]of[- ]action data is not available",
        "Mechanism of action data is missing from the evidence pack.",
    ),
    (
        "DG003",
        "high",
        r"(?:drug interaction|ddi) data (?:is|was|were) not available",
        "Drug interaction data were not retrieved.",
    ),
)

# Checked in order on the title, then on the detail; the first match wins.
CONDITION_KEYWORDS: tuple[tuple[str, str], ...] = (
    ("regulatory", r"regulat|registration|licen[cs]e|\bimport\b|approval|pathway|\bind\b|compassionate"),
    ("monitoring", r"monitor|surveillance|assessment|follow-up|\bcbc\b|laborator"),
    (
        "safety",
        r"safety|toxicit|teratogen|warning|contraindication|prophylaxis|thrombo|\bdvt\b|myelosuppression|rems",
    ),
    ("clinical", r"subgroup|population|trial|\bdose|efficacy|patient|stratif|screening|protocol"),
)

_QUOTES = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"'})
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_BOLD = re.compile(r"(\*\*|__)")
_HEADER = re.compile(
    r"(?:證據等級|Evidence Level)\s*:\s*(L[1-5])\s*\|\s*(?:預測適應症|Predicted Indications)\s*:\s*(\d+)", re.I
)
_HTML_LINE = re.compile(r"^</?[a-zA-Z][^>]*>$")
_KRAMDOWN_LINE = re.compile(r"^\{:.*\}$")
_RULE = re.compile(r"^(?:-{3,}|\*{3,}|_{3,})$")
_BULLET = re.compile(r"^[-*+]\s+")
_ORDERED = re.compile(r"^\d+\.\s+")
_NOT_A_NUMBER = {"", "-", "—", "n/a", "na", "not available", "unknown"}


def fold_typography(text: str) -> str:
    """Straight quotes for curly ones: to compare two spellings of one text, never to store it."""
    return text.translate(_QUOTES)


def _folded(value: Any) -> Any:
    if isinstance(value, str):
        return fold_typography(value)
    if isinstance(value, list | tuple):
        return type(value)(_folded(item) for item in value)
    if is_dataclass(value) and not isinstance(value, type):
        return replace(value, **{f.name: _folded(getattr(value, f.name)) for f in fields(value) if f.init})
    return value


class ReportError(Exception):
    """Bad input, located: `seed.txt, line 27, field "Enrollment": "abc" is not a number`."""

    def __init__(self, file: str, line: int | None, field: str | None, message: str) -> None:
        super().__init__(message)
        self.file, self.line, self.field, self.message = file, line, field, message

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f", line {self.line}"
        if self.field:
            where += f', field "{self.field}"'
        return f"{where}: {self.message}"


def _line() -> int | None:
    return field(default=None, compare=False)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class OverviewItem:
    item: str
    content: str
    line: int | None = _line()


@dataclass(frozen=True)
class TrialRow:
    nct_id: str
    phase: str
    status: str
    enrollment: int | None
    key_findings: str
    line: int | None = _line()


@dataclass(frozen=True)
class PublicationRow:
    pmid: str
    year: int | None
    study_type: str
    journal: str
    key_findings: str
    line: int | None = _line()


@dataclass(frozen=True)
class CytotoxicityRow:
    item: str
    content: str
    field_name: str
    line: int | None = _line()


@dataclass(frozen=True)
class InteractionGroup:
    """One "<Severity> severity: a, b — note" bullet."""

    severity: str
    names: tuple[str, ...]
    note: str
    qualifier: str = ""
    and_others: bool = False
    line: int | None = _line()


@dataclass(frozen=True)
class SafetyRow:
    kind: str
    text: str
    line: int | None = _line()


@dataclass(frozen=True)
class DataGapRow:
    code: str
    severity: str
    description: str
    line: int | None = _line()


@dataclass(frozen=True)
class ConditionRow:
    title: str
    detail: str
    category: str
    line: int | None = _line()


@dataclass(frozen=True)
class RegistrationRow:
    """A product licence listed in the market section (`| DIN | Product Name |`); kept as table text too."""

    number: str
    product_name: str
    dosage_form: str = ""
    line: int | None = _line()


@dataclass(frozen=True)
class ApprovalRow:
    agency: str
    indications: str
    line: int | None = _line()


@dataclass
class ParsedDossier:
    """Everything one report says, typed; equal for the text and Markdown forms of a report."""

    drug: str = ""
    title: str = ""
    market_name: str = ""
    market_code: str | None = None
    registration_term: str = "registrations"
    market_status: str = Dossier.MarketStatus.UNKNOWN
    registration_count: int | None = None
    reported_indication_count: int | None = None
    # Candidate
    disease: str = ""
    original_indication: str = ""
    # Drug facts the report states: brand names marked ® or ™ beside the drug's name, and its class.
    synonyms: list[str] = field(default_factory=list)
    drug_class: str = ""
    txgnn_score: float | None = None
    evidence_level: str = EvidenceLevel.L5
    decision: str = ""
    summary: str = ""
    rationale: str = ""
    conclusion_rationale: str = ""
    trials_reported_total: int | None = None
    trials_total_capped: bool = False
    publications_reported_total: int | None = None
    publications_total_capped: bool = False
    quick_overview: list[OverviewItem] = field(default_factory=list)
    trials: list[TrialRow] = field(default_factory=list)
    trials_note: str = ""
    no_trials_registered: bool = False
    publications: list[PublicationRow] = field(default_factory=list)
    publications_note: str = ""
    # Dossier
    market_information: str = ""
    registrations: list[RegistrationRow] = field(default_factory=list)
    approvals: list[ApprovalRow] = field(default_factory=list)
    cytotoxicity: list[CytotoxicityRow] = field(default_factory=list)
    cytotoxicity_note: str = ""
    interactions: list[InteractionGroup] = field(default_factory=list)
    interaction_total: int | None = None
    safety_note: str = ""
    safety_statements: list[SafetyRow] = field(default_factory=list)
    data_gaps: list[DataGapRow] = field(default_factory=list)
    conditions: list[ConditionRow] = field(default_factory=list)
    disclaimer: str = ""
    file_name: str = field(default="", compare=False)
    source_format: str = field(default="", compare=False)

    def folded(self) -> ParsedDossier:
        """A copy with straight quotes for curly ones, for comparing two forms of one report."""
        return _folded(self)  # type: ignore[no-any-return]

    @property
    def boxed_warnings(self) -> list[SafetyRow]:
        return [row for row in self.safety_statements if row.kind == SafetyStatement.Kind.BOXED_WARNING]

    def row_count(self) -> int:
        """Rows of evidence and detail the report holds, for the import summary."""
        return (
            len(self.trials)
            + len(self.publications)
            + sum(len(group.names) for group in self.interactions)
            + len(self.safety_statements)
            + len(self.data_gaps)
            + len(self.conditions)
            + len(self.approvals)
        )


@dataclass
class _Block:
    kind: str  # heading, header, row, item, para
    text: str
    line: int


# ---------------------------------------------------------------- reading


def read_report_bytes(source: str | Path | bytes | IO[bytes], *, file_name: str) -> bytes:
    """Read at most MAX_REPORT_BYTES; a larger input is refused before it is read whole."""
    if isinstance(source, bytes):
        data = source
    elif isinstance(source, str | Path):
        path = Path(source)
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise ReportError(file_name, None, None, f"cannot read the file: {exc.strerror}") from None
        if size > MAX_REPORT_BYTES:
            raise _too_large(file_name, size)
        data = path.read_bytes()
    else:
        data = source.read(MAX_REPORT_BYTES + 1)
    if len(data) > MAX_REPORT_BYTES:
        raise _too_large(file_name, len(data))
    return data


def _too_large(file_name: str, size: int) -> ReportError:
    return ReportError(
        file_name,
        None,
        None,
        f"is {size / 1_048_576:.1f} MB; a dossier report is at most {MAX_REPORT_BYTES // 1_048_576} MB "
        "(is this a dossier report?)",
    )


def _decode(data: bytes, file_name: str) -> str:
    if not data.strip():
        raise ReportError(file_name, None, None, "the file is empty")
    if b"\x00" in data[:65536]:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise ReportError(file_name, line, None, "contains NUL bytes: a binary file, not a dossier report")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ReportError(
            file_name, line, None, f"is not UTF-8 text (byte {exc.start}): a binary file, not a dossier report"
        ) from None


def _clean(text: str) -> str:
    text = _LINK.sub(r"\1", text)
    text = _BOLD.sub("", text)
    return re.sub(r"\s+", " ", text).strip()


def _is_markdown(lines: list[str]) -> bool:
    return (bool(lines) and lines[0].strip() == "---") or any(re.match(r"#{1,6}\s", line) for line in lines)


def _front_matter(lines: list[str], file_name: str) -> tuple[dict, int]:
    """Parse YAML front matter; return it and the index of the first line after it."""
    if not lines or lines[0].strip() != "---":
        return {}, 0
    for end in range(1, len(lines)):
        if lines[end].strip() in ("---", "..."):
            try:
                data = yaml.safe_load("\n".join(lines[1:end])) or {}
            except yaml.YAMLError as exc:
                raise ReportError(file_name, 1, "front matter", f"is not valid YAML: {exc}") from None
            if not isinstance(data, dict):
                raise ReportError(file_name, 1, "front matter", "is not a mapping of keys to values")
            return data, end + 1
    raise ReportError(file_name, 1, "front matter", "is not closed by a '---' line")


def _looks_like_heading(text: str) -> bool:
    """In flattened text a heading is a short line that is not a sentence, a list item or a table row."""
    return (
        len(text) <= 80
        and len(text.split()) <= 8
        and ": " not in text
        and not text.endswith((".", ":", ";", ","))
        and not text.startswith(("|", "-", "*", ">"))
    )


def _blocks(text: str, file_name: str) -> tuple[dict, list[_Block], bool]:
    lines = text.splitlines()
    markdown = _is_markdown(lines)
    front, start = _front_matter(lines, file_name) if markdown else ({}, 0)
    blocks: list[_Block] = []
    joinable = False  # Markdown only: the next plain line continues the previous paragraph or item.
    for index in range(start, len(lines)):
        number, raw = index + 1, lines[index].strip()
        if raw.startswith(">"):
            raw = raw.lstrip(">").strip()
        if not raw or _KRAMDOWN_LINE.match(raw) or _HTML_LINE.match(raw) or _RULE.match(raw):
            joinable = False
            continue
        block = _classify(raw, number, markdown)
        if block.kind == "para" and markdown and joinable:
            blocks[-1].text = f"{blocks[-1].text} {block.text}"
            continue
        blocks.append(block)
        joinable = markdown and block.kind in ("para", "item")
    return front, blocks, markdown


def _classify(raw: str, number: int, markdown: bool) -> _Block:
    cleaned = _clean(raw)
    if _HEADER.search(cleaned):
        return _Block("header", cleaned, number)
    if markdown and raw.startswith("#"):
        return _Block("heading", _clean(raw.lstrip("#").rstrip("#")), number)
    if raw.startswith("|"):
        return _Block("row", raw, number)
    if _BULLET.match(raw) or (markdown and _ORDERED.match(raw)):
        return _Block("item", _clean(_BULLET.sub("", _ORDERED.sub("", raw))), number)
    if not markdown and (_section_key(cleaned) or _looks_like_heading(cleaned)):
        return _Block("heading", cleaned, number)
    return _Block("para", cleaned, number)


# ---------------------------------------------------------------- sections

_SECTIONS: dict[str, str] = {
    "目錄": "toc",
    "table of contents": "toc",
    "藥師評估報告": "ignored",
    "pharmacist assessment report": "ignored",
    "one-sentence summary": "summary",
    "quick overview": "overview",
    "why is this prediction reasonable?": "rationale",
    "clinical trial evidence": "trials",
    "literature evidence": "literature",
    "cytotoxicity": "cytotoxicity",
    "safety considerations": "safety",
    "conclusion and next steps": "conclusion",
    "disclaimer": "disclaimer",
    # Written by the portal's own exporter; importing its export gives back the same dossier.
    "data gaps": "data_gaps",
    "review and sign-off": "ignored",
}
# Every report ends with these; a file without them was cut off (see `_check_complete`).
CLOSING_SECTIONS: dict[str, str] = {"conclusion": "Conclusion and Next Steps", "disclaimer": "Disclaimer"}
_SECTION_TITLES: dict[str, str] = {
    "summary": "One-Sentence Summary",
    "overview": "Quick Overview",
    "rationale": "Why is This Prediction Reasonable?",
    "trials": "Clinical Trial Evidence",
    "literature": "Literature Evidence",
    "cytotoxicity": "Cytotoxicity",
    "safety": "Safety Considerations",
    "data_gaps": "Data Gaps",
    **CLOSING_SECTIONS,
}
_CONDITION_STATUS = re.compile(r"\s*[*_]?\(status:\s*[a-z ]+\)[*_]?\s*$", re.I)
_MARKET_HEADING = re.compile(r"^(.+?) Market Information$", re.I)


def _section_key(heading: str) -> str | None:
    if heading.lower() in _SECTIONS:
        return _SECTIONS[heading.lower()]
    return "market" if _MARKET_HEADING.match(heading) else None


def parse_report(
    source: str | Path | bytes | IO[bytes], *, file_name: str, market_code: str | None = None
) -> ParsedDossier:
    """Parse a dossier report; `market_code` confirms or supplies the market. Raises ReportError."""
    data = read_report_bytes(source, file_name=file_name)
    text = _decode(data, file_name)
    front, blocks, markdown = _blocks(text, file_name)
    parsed = ParsedDossier(file_name=file_name, source_format="markdown" if markdown else "text")
    sections = _split_sections(blocks, parsed, file_name)
    _apply_front_matter(front, parsed, file_name)
    _Reader(parsed, file_name).read(sections)
    _check_market(parsed, market_code, file_name)
    return parsed


def _split_sections(blocks: list[_Block], parsed: ParsedDossier, file_name: str) -> dict[str, list[_Block]]:
    sections: dict[str, list[_Block]] = {"preamble": []}
    heading_lines: dict[str, int] = {}
    current = "preamble"
    for block in blocks:
        if block.kind == "header":
            count = _HEADER.search(block.text).group(2)  # type: ignore[union-attr]
            parsed.reported_indication_count = _number(count, file_name, block.line, "Predicted Indications")
            continue
        if block.kind == "heading":
            key = _section_key(block.text)
            if key is None:
                _preamble_heading(block, parsed, current, file_name)
                continue
            if key in heading_lines:
                raise ReportError(
                    file_name, block.line, block.text, f"section repeats the one at line {heading_lines[key]}"
                )
            heading_lines[key] = block.line
            current = key
            sections[key] = [block] if key == "market" else []
            continue
        if current in ("preamble", "toc", "ignored") and _is_title(block, parsed):
            parsed.title = _fit(block.text, "title", file_name, block.line, "title")
            continue
        sections.setdefault(current, []).append(block)
    if "overview" not in sections:
        raise ReportError(file_name, None, None, 'not a dossier report: it has no "Quick Overview" section')
    _check_complete(sections, heading_lines, blocks[-1].line, file_name)
    return sections


def _check_complete(
    sections: dict[str, list[_Block]], heading_lines: dict[str, int], last_line: int, file_name: str
) -> None:
    """Refuse a report cut off at a line boundary: its closing sections are missing, or a section is empty.

    Without this, a cut file reads as a shorter report, and importing it deletes what the lost lines held.
    """
    missing = [CLOSING_SECTIONS[key] for key in CLOSING_SECTIONS if key not in sections]
    if missing:
        names = " and ".join(f'"{name}"' for name in missing)
        plural = "s" if len(missing) > 1 else ""
        raise ReportError(
            file_name,
            last_line,
            missing[0],
            f"the report ends at line {last_line} without its {names} section{plural} (cut off?)",
        )
    for key, line in heading_lines.items():
        body = sections[key][1:] if key == "market" else sections.get(key, [])
        if key not in ("toc", "ignored") and not body:
            heading = sections[key][0].text if key == "market" else _SECTION_TITLES.get(key, key)
            raise ReportError(file_name, line, heading, "the section is empty (cut off?)")


def _is_title(block: _Block, parsed: ParsedDossier) -> bool:
    return bool(parsed.drug) and not parsed.title and block.text.lower().startswith(f"{parsed.drug.lower()}:")


def _preamble_heading(block: _Block, parsed: ParsedDossier, current: str, file_name: str) -> None:
    """Headings before the first section name the drug and the title; any other is unknown."""
    if current in ("preamble", "toc", "ignored"):
        if not parsed.drug:
            parsed.drug = _fit(block.text, "drug", file_name, block.line, "drug name")
            return
        if _is_title(block, parsed):
            parsed.title = _fit(block.text, "title", file_name, block.line, "title")
            return
    raise ReportError(file_name, block.line, "section heading", f'unknown section heading "{block.text}"')


def _apply_front_matter(front: dict, parsed: ParsedDossier, file_name: str) -> None:
    title = str(front.get("title") or "").strip()
    if title and parsed.drug and title.lower() != parsed.drug.lower():
        raise ReportError(file_name, 1, "title", f'front matter names "{title}" but the report "{parsed.drug}"')
    parsed.drug = parsed.drug or _fit(title, "drug", file_name, 1, "title")
    if parsed.reported_indication_count is None and str(front.get("indication_count", "")).isdigit():
        count = str(front["indication_count"])
        parsed.reported_indication_count = _number(count, file_name, 1, "indication_count")
    if not parsed.drug:
        raise ReportError(file_name, 1, None, "not a dossier report: the drug name is missing")


def _check_market(parsed: ParsedDossier, market_code: str | None, file_name: str) -> None:
    if not market_code:
        return
    code = _fit(market_code.strip().upper(), "market_code", file_name, None, "market")
    if parsed.market_code and parsed.market_code != code:
        raise ReportError(
            file_name,
            None,
            "market",
            f'the report is for {parsed.market_name} ({parsed.market_code}), not for market "{code}"',
        )
    parsed.market_code = code


# ---------------------------------------------------------------- values


def _number(
    text: str,
    file_name: str,
    line: int | None,
    field_name: str,
    *,
    blank_ok: bool = True,
    bounds: tuple[int, int] = (0, MAX_INTEGER),
) -> int | None:
    value = text.strip().replace(",", "")
    if blank_ok and value.lower() in _NOT_A_NUMBER:
        return None
    if not value.isdigit():
        raise ReportError(file_name, line, field_name, f'"{text.strip()}" is not a number')
    number = int(value)
    if not bounds[0] <= number <= bounds[1]:
        raise ReportError(file_name, line, field_name, f"{number} is out of range ({bounds[0]} to {bounds[1]})")
    return number


def _fit(value: str, column: str, file_name: str, line: int | None, field_name: str) -> str:
    """The value, if its column takes it; else a ReportError naming where it is."""
    limit = MAX_LENGTH[column]
    if len(value) > limit:
        shown = value if len(value) <= 40 else f"{value[:40]}…"
        raise ReportError(
            file_name, line, field_name, f'"{shown}" is {len(value)} characters long; at most {limit} fit'
        )
    return value


def parse_score(text: str, *, file_name: str, line: int) -> float | None:
    """ "99.49%" → 0.9949, "0.9949" → 0.9949, "Not available" → None."""
    value = text.strip()
    if value.lower() in _NOT_A_NUMBER:
        return None
    try:
        number = Decimal(value.rstrip("%").strip())
    except InvalidOperation:
        raise ReportError(file_name, line, "TxGNN Prediction Score", f'"{value}" is not a score') from None
    if value.endswith("%"):
        number /= 100
    if not 0 <= number <= 1:
        raise ReportError(file_name, line, "TxGNN Prediction Score", f'"{value}" is outside 0–100%')
    return float(number)


def parse_decision(text: str, *, file_name: str, line: int | None) -> str:
    """Map a decision as published ("Conditional Go", "Proceed", …) onto `Decision`."""
    key = re.sub(r"[\s\-–—_]+", " ", text.strip().rstrip(".").lower()).strip()
    if key not in DECISION_SPELLINGS:
        raise ReportError(file_name, line, "Decision", f'unknown decision "{text.strip()}"')
    return DECISION_SPELLINGS[key]


def _market_code(name: str) -> str | None:
    try:
        return str(pycountry.countries.lookup(name).alpha_2)
    except LookupError:
        return None


def same_text(a: str, b: str) -> bool:
    """Equal but for case and quote style: how a report's names match stored ones."""
    return fold_typography(a).casefold() == fold_typography(b).casefold()


def _split_top_level(text: str) -> Iterator[str]:
    """Split on commas outside parentheses, dropping a leading "and "."""
    depth, start = 0, 0
    for index, char in enumerate(text + ","):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            part = re.sub(r"^(?:and|or)\s+", "", text[start:index].strip()).strip()
            if part:
                yield part
            start = index + 1


def _sentence_end(text: str, start: int) -> int:
    depth = 0
    for index in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[index], 0)
        if text[index] == "." and depth == 0 and (index + 1 == len(text) or text[index + 1].isspace()):
            return index
    return len(text)


def _category(title: str, detail: str) -> str:
    for text in (title.lower(), detail.lower()):
        for category, pattern in CONDITION_KEYWORDS:
            if re.search(pattern, text):
                return category
    return GuardrailCondition.Category.OTHER


def _paragraphs(blocks: Iterable[_Block]) -> str:
    """Paragraphs apart by a blank line; a run of list items or table rows kept as Markdown, one a line."""
    text, previous = "", ""
    for block in blocks:
        if block.kind == "item":
            line = f"- {block.text}"
        elif block.kind == "row":
            cells = _cells(block.text)
            rule = all(re.fullmatch(r":?-+:?", cell) for cell in cells)
            line = "|" + "|".join("---" for _ in cells) + "|" if rule else _table_row(cells)
        else:
            line = block.text
        if text:
            text += "\n" if block.kind in ("item", "row") and previous == block.kind else "\n\n"
        text, previous = text + line, block.kind
    return text


# "<Drug> [(…)] is a/an <class>", up to the first word that starts saying what it is for or where it is sold.
_CLASS_SENTENCE = re.compile(
    r"^[^()]+?(?:\s*\([^()]*\))?\s+is\s+an?\s+(?P<phrase>.+?)"
    r"(?=\s+(?:approved|that|which|whose|marketed|used|registered|indicated|originally|classically|widely"
    r"|licensed|currently|available|sold|known|for|with)\b|,\s+(?:widely|which|and|used|originally)\b|$)"
)
_ROUTE = re.compile(r"^(?:(?:oral|orally active|intravenous|injectable|topical|inhaled|subcutaneous)\s+)+", re.I)
MAX_CLASS_WORDS = 8


def _table_row(cells: list[str]) -> str:
    return "| " + " | ".join(_clean(cell).replace("|", "\\|") for cell in cells) + " |"


# Paragraphs a section's table stands for, or the exporter's count line: not notes of their own.
_NO_TRIALS = re.compile(r"no related clinical trials|^registered trials found\s*:", re.I)
_NO_PUBLICATIONS = re.compile(r"no related (?:literature|publications)|^publications found\s*:", re.I)


# ---------------------------------------------------------------- section readers


class _Reader:
    """Reads each section's blocks into the ParsedDossier."""

    def __init__(self, parsed: ParsedDossier, file_name: str) -> None:
        self.parsed, self.file = parsed, file_name
        self.overview_decision: tuple[str, int] | None = None

    def read(self, sections: dict[str, list[_Block]]) -> None:
        for key, reader in (
            ("overview", self.overview),
            ("summary", self.summary),
            ("rationale", self.rationale),
            ("trials", self.trials),
            ("literature", self.literature),
            ("market", self.market),
            ("cytotoxicity", self.cytotoxicity),
            ("safety", self.safety),
            ("conclusion", self.conclusion),
            ("disclaimer", self.disclaimer),
        ):
            if key in sections:
                reader(sections[key])
        self.drug_facts()
        if "data_gaps" in sections:
            self.data_gap_table(sections["data_gaps"])
        self.data_gaps(
            [block for key, blocks in sections.items() if key not in ("toc", "data_gaps") for block in blocks]
        )

    def error(self, line: int | None, field_name: str | None, message: str) -> ReportError:
        return ReportError(self.file, line, field_name, message)

    def no_stray_blocks(self, blocks: list[_Block], section: str, allowed: tuple[str, ...]) -> None:
        for block in blocks:
            if block.kind not in allowed:
                raise self.error(block.line, section, f'unexpected {block.kind} "{block.text[:60]}"')

    def table(self, blocks: list[_Block], section: str, columns: tuple[str, ...]) -> list[tuple[list[str], int]]:
        """The section's table rows after its header, each checked for the right number of cells."""
        rows = [block for block in blocks if block.kind == "row"]
        if not rows:
            return []
        header = _cells(rows[0].text)
        if [cell.lower() for cell in header] != [column.lower() for column in columns]:
            raise self.error(rows[0].line, section, f"table columns are {header}, expected {list(columns)}")
        result = []
        for row in rows[1:]:
            cells = _cells(row.text)
            if all(re.fullmatch(r":?-+:?", cell) for cell in cells):
                continue
            if len(cells) != len(columns):
                raise self.error(
                    row.line, section, f"table row has {len(cells)} cells, expected {len(columns)} (truncated?)"
                )
            result.append(([_clean(cell) for cell in cells], row.line))
        return result

    def drug_facts(self) -> None:
        """Brand names as "<drug> (Revlimid®)", and the class from "<drug> is an <class> approved for …"."""
        parsed = self.parsed
        drug = re.escape(parsed.drug)
        for text in (parsed.summary, parsed.rationale, parsed.market_information):
            for marks in re.finditer(rf"\b{drug}\s*\(([^()]*[®™][^()]*)\)", text, re.I):
                for brand in re.findall(r"([A-Z][\w\-]*(?:\s[A-Z0-9][\w\-]*)*)\s*[®™]", marks.group(1)):
                    if not any(same_text(brand, known) for known in [parsed.drug, *parsed.synonyms]):
                        parsed.synonyms.append(brand)
        sentence = parsed.summary[: _sentence_end(parsed.summary, 0)]
        if match := _CLASS_SENTENCE.match(sentence) if sentence.lower().startswith(parsed.drug.lower()) else None:
            phrase = _ROUTE.sub("", match.group("phrase")).strip().rstrip(",;").strip()
            if 0 < len(phrase.split()) <= MAX_CLASS_WORDS:
                parsed.drug_class = _fit(phrase, "drug_class", self.file, None, "drug class")

    def overview(self, blocks: list[_Block]) -> None:
        self.no_stray_blocks(blocks, "Quick Overview", ("row",))
        for (item, content), line in self.table(blocks, "Quick Overview", ("Item", "Content")):
            self.parsed.quick_overview.append(OverviewItem(item, content, line))
            self.overview_item(item, content, line)
        if not self.parsed.disease:
            raise self.error(None, "Predicted New Indication", "is missing from the Quick Overview")

    def overview_item(self, item: str, content: str, line: int) -> None:
        parsed, key = self.parsed, item.lower()
        if key == "original indication":
            parsed.original_indication = content
        elif key == "predicted new indication":
            parsed.disease = _fit(content, "disease", self.file, line, item)
        elif key == "txgnn prediction score":
            parsed.txgnn_score = parse_score(content, file_name=self.file, line=line)
        elif key == "evidence level":
            match = re.match(r"(L[1-5])\b", content)
            if not match:
                raise self.error(line, item, f'"{content}" is not an evidence level L1–L5')
            parsed.evidence_level = match.group(1)
        elif key == "recommended decision":
            self.overview_decision = (parse_decision(content, file_name=self.file, line=line), line)
        elif match := re.match(r"^(.+?) market status$", item, re.I):
            self.market_name(match.group(1), line, item)
            status = re.sub(r"^[^\w]+", "", content).strip().lower()
            if status not in MARKET_STATUS_SPELLINGS:
                raise self.error(line, item, f'unknown market status "{content}"')
            parsed.market_status = MARKET_STATUS_SPELLINGS[status]
        elif match := re.match(r"^number of (.+)$", item, re.I):
            term = _fit(match.group(1).strip(), "registration_term", self.file, line, item)
            # "Registrations" → "registrations", but "DINs" and "SAHPRA" keep their capitals.
            words = [word.lower() if word[1:].islower() else word for word in term.split()]
            parsed.registration_term = " ".join(words)
            parsed.registration_count = _number(content, self.file, line, item)
        else:
            raise self.error(line, "Quick Overview", f'unknown item "{item}"')

    def market_name(self, name: str, line: int, field_name: str) -> None:
        if self.parsed.market_name and self.parsed.market_name.lower() != name.lower():
            raise self.error(line, field_name, f'names market "{name}" but the report is for {self.parsed.market_name}')
        self.parsed.market_name = _fit(name, "market", self.file, line, field_name)
        self.parsed.market_code = _market_code(name)

    def summary(self, blocks: list[_Block]) -> None:
        self.no_stray_blocks(blocks, "One-Sentence Summary", ("para",))
        parsed = self.parsed
        parsed.summary = _paragraphs(blocks)
        line = blocks[0].line if blocks else None
        if match := re.search(r"(\d[\d,]*)\s+clinical trials?", parsed.summary, re.I):
            total = _number(match.group(1), self.file, line, "One-Sentence Summary", blank_ok=False) or 0
            parsed.trials_reported_total, parsed.trials_total_capped = total, total >= TRIALS_PAGE_CAP
        if match := re.search(r"(\d[\d,]*)\s+publications?", parsed.summary, re.I):
            total = _number(match.group(1), self.file, line, "One-Sentence Summary", blank_ok=False) or 0
            parsed.publications_reported_total = total
            parsed.publications_total_capped = total >= PUBLICATIONS_PAGE_CAP

    def rationale(self, blocks: list[_Block]) -> None:
        self.no_stray_blocks(blocks, "Why is This Prediction Reasonable?", ("para", "item"))
        self.parsed.rationale = _paragraphs(blocks)

    def trials(self, blocks: list[_Block]) -> None:
        section = "Clinical Trial Evidence"
        self.no_stray_blocks(blocks, section, ("row", "para", "item"))
        prose = [block for block in blocks if block.kind != "row"]
        self.parsed.no_trials_registered = any(_NO_TRIALS.search(block.text) for block in prose)
        self.parsed.trials_note = _paragraphs(block for block in prose if not _NO_TRIALS.search(block.text))
        seen: dict[str, int] = {}
        columns = ("Trial Number", "Phase", "Status", "Enrollment", "Key Findings")
        for (nct_id, phase, status, enrollment, finding), line in self.table(blocks, section, columns):
            nct_id = nct_id.upper()
            if not re.fullmatch(r"NCT\d{8}", nct_id):
                raise self.error(line, "Trial Number", f'"{nct_id}" is not an NCT number (NCT and 8 digits)')
            if nct_id in seen:
                raise self.error(line, "Trial Number", f"{nct_id} is listed twice (first at line {seen[nct_id]})")
            seen[nct_id] = line
            number = _number(enrollment, self.file, line, "Enrollment")
            phase = _fit(phase, "phase", self.file, line, "Phase")
            status = _fit(status, "trial_status", self.file, line, "Status")
            self.parsed.trials.append(TrialRow(nct_id, phase, status, number, finding, line))

    def literature(self, blocks: list[_Block]) -> None:
        section = "Literature Evidence"
        self.no_stray_blocks(blocks, section, ("row", "para", "item"))
        prose = [block for block in blocks if block.kind != "row" and not _NO_PUBLICATIONS.search(block.text)]
        self.parsed.publications_note = _paragraphs(prose)
        seen: dict[str, int] = {}
        for (pmid, year, kind, journal, finding), line in self.table(
            blocks, section, ("PMID", "Year", "Type", "Journal", "Key Findings")
        ):
            pmid = re.sub(r"^PMID:?\s*", "", pmid, flags=re.I)
            if not re.fullmatch(r"\d{1,9}", pmid):
                raise self.error(line, "PMID", f'"{pmid}" is not a PubMed id')
            if pmid in seen:
                raise self.error(line, "PMID", f"{pmid} is listed twice (first at line {seen[pmid]})")
            seen[pmid] = line
            number = _number(year, self.file, line, "Year", bounds=YEARS)
            kind = _fit(kind, "study_type", self.file, line, "Type")
            journal = _fit(journal, "journal", self.file, line, "Journal")
            self.parsed.publications.append(PublicationRow(pmid, number, kind, journal, finding, line))

    def market(self, blocks: list[_Block]) -> None:
        heading, body = blocks[0], blocks[1:]
        self.market_name(_MARKET_HEADING.match(heading.text).group(1), heading.line, heading.text)  # type: ignore[union-attr]
        self.no_stray_blocks(body, heading.text, ("para", "row", "item"))
        self.registrations(body, heading.text)
        # The licence table stays in the text as a Markdown table: the data model has no rows for it.
        self.parsed.market_information = _paragraphs(body)
        for block in body:
            if block.kind == "para":
                self.parsed.approvals.extend(_approvals(block))

    def registrations(self, blocks: list[_Block], section: str) -> None:
        """ "| DIN | Product Name |" or "| Registration Number | Product Name | Dosage Form |" rows."""
        rows = [block for block in blocks if block.kind == "row"]
        if not rows:
            return
        header = [_clean(cell) for cell in _cells(rows[0].text)]
        lowered = [cell.lower() for cell in header]
        known = re.fullmatch(r"din|.*(?:registration|licen[cs]e|authori[sz]ation)(?: (?:number|no\.?))?", lowered[0])
        if not known or "product name" not in lowered:
            raise self.error(
                rows[0].line, section, f'table columns are {header}, expected a licence number and "Product Name"'
            )
        columns = tuple(header)
        for cells, line in self.table(blocks, section, columns):
            named = dict(zip(lowered, cells, strict=True))
            form = named.get("dosage form", "")
            self.parsed.registrations.append(RegistrationRow(cells[0], named["product name"], form, line))

    def cytotoxicity(self, blocks: list[_Block]) -> None:
        self.no_stray_blocks(blocks, "Cytotoxicity", ("row", "para", "item"))
        for (item, content), line in self.table(blocks, "Cytotoxicity", ("Item", "Content")):
            if item.lower() not in CYTOTOXICITY_ITEMS:
                raise self.error(line, "Cytotoxicity", f'unknown item "{item}"')
            self.parsed.cytotoxicity.append(CytotoxicityRow(item, content, CYTOTOXICITY_ITEMS[item.lower()], line))
        # Prose before or after the table (how the values were chosen, where to read more) is the section's note.
        self.parsed.cytotoxicity_note = _paragraphs(block for block in blocks if block.kind != "row")

    def safety(self, blocks: list[_Block]) -> None:
        notes: list[str] = []
        seen: dict[str, int] = {}
        for block in blocks:
            if block.kind == "item" and not re.match(r"drug interactions\s*:", block.text, re.I):
                self.interaction(block, seen)
            elif block.kind in ("para", "item") and re.match(r"drug interactions\s*:", block.text, re.I):
                if match := re.search(r"(\d[\d,]*)\s+total interactions?", block.text, re.I):
                    total = _number(match.group(1), self.file, block.line, "Drug Interactions", blank_ok=False)
                    self.parsed.interaction_total = total
            elif block.kind == "para":
                notes.append(self.safety_statements(block))
            else:
                raise self.error(block.line, "Safety Considerations", f'unexpected {block.kind} "{block.text[:60]}"')
        self.parsed.safety_note = "\n\n".join(note for note in notes if note)

    def interaction(self, block: _Block, seen: dict[str, int]) -> None:
        match = re.match(r"^(major|moderate|minor|unknown) severity\s*(?:\(([^)]*)\))?\s*:\s*(.+)$", block.text, re.I)
        if not match:
            raise self.error(
                block.line, "Drug Interactions", f'not an "<severity> severity: drugs" line: "{block.text}"'
            )
        parts = re.split(r"\s+([—–-])\s+", match.group(3), maxsplit=1)
        names_text, note = parts[0], (parts[2] if len(parts) == 3 else "")
        names, others = [], False
        for name in _split_top_level(names_text):
            if name.lower() in ("others", "etc", "etc."):
                others = True
                continue
            key = fold_typography(name).lower()
            if key in seen:
                raise self.error(block.line, "Drug Interactions", f'"{name}" is listed twice')
            seen[key] = block.line
            names.append(_fit(name, "interacting_drug", self.file, block.line, "Drug Interactions"))
        severity = DrugInteraction.Severity(match.group(1).lower())
        group = InteractionGroup(severity, tuple(names), note, match.group(2) or "", others, block.line)
        self.parsed.interactions.append(group)

    def safety_statements(self, block: _Block) -> str:
        """Take "Known Black Box Warnings include: a, b (…), and c" out of the text as rows; return the rest."""
        text = block.text
        patterns = (
            (SafetyStatement.Kind.BOXED_WARNING, r"Known (?:Black[- ]Box|Boxed) Warnings? includes?\s*:?\s*"),
            (SafetyStatement.Kind.CONTRAINDICATION, r"(?:Known )?Contraindications include\s*:?\s*"),
        )
        for kind, pattern in patterns:
            match = re.search(pattern, text, re.I)
            if not match:
                continue
            end = _sentence_end(text, match.end())
            for item in _split_top_level(text[match.end() : end]):
                if item.lower() not in ("none", "none known", "n/a"):
                    self.parsed.safety_statements.append(SafetyRow(kind, item, block.line))
            text = (text[: match.start()] + text[end + 1 :]).strip()
        return text

    def conclusion(self, blocks: list[_Block]) -> None:
        parsed, prose, decision_line = self.parsed, [], None
        checklist = False  # only the bullets right after "To proceed, the following is needed:" are conditions
        for block in blocks:
            if block.kind == "item":
                if checklist:
                    self.condition(block)
                else:
                    prose.append(block)
                continue
            if block.kind != "para":
                raise self.error(block.line, "Conclusion and Next Steps", f'unexpected {block.kind} "{block.text}"')
            checklist = False
            if match := re.match(r"^Decision\s*:\s*(.+)$", block.text, re.I):
                parsed.decision = parse_decision(match.group(1), file_name=self.file, line=block.line)
                decision_line = block.line
            elif match := re.match(r"^Rationale\s*:\s*(.*)$", block.text, re.I | re.S):
                if match.group(1):
                    prose.append(_Block("para", match.group(1), block.line))
            elif re.match(r"^to proceed\b.*:$", block.text, re.I):
                checklist = True
            else:
                prose.append(block)
        parsed.conclusion_rationale = _paragraphs(prose)
        if self.overview_decision:
            overview, line = self.overview_decision
            if parsed.decision and parsed.decision != overview:
                raise self.error(decision_line, "Decision", f"disagrees with the Quick Overview (line {line})")
            parsed.decision = overview

    def condition(self, block: _Block) -> None:
        # The exporter appends "(status: open)"; the status is the portal's, not the report's.
        text = _CONDITION_STATUS.sub("", block.text)
        title, _, detail = text.partition(": ")
        title, detail = title.strip().rstrip(":"), detail.strip()
        if len(title) > MAX_LENGTH["condition"]:
            raise self.error(block.line, "To proceed", "a checklist item needs a short title before a colon")
        if any(same_text(row.title, title) for row in self.parsed.conditions):
            raise self.error(block.line, "To proceed", f'"{title}" is listed twice')
        row = ConditionRow(title, detail, _category(title, detail), block.line)
        self.parsed.conditions.append(row)

    def disclaimer(self, blocks: list[_Block]) -> None:
        self.no_stray_blocks(blocks, "Disclaimer", ("para",))
        self.parsed.disclaimer = _paragraphs(blocks)

    def data_gap_table(self, blocks: list[_Block]) -> None:
        """The exporter's "Data Gaps" table; its rows win over gaps inferred from phrases."""
        self.no_stray_blocks(blocks, "Data Gaps", ("row",))
        severities = {choice.lower() for choice in DataGap.Severity.values}
        for (code, missing, severity, _status), line in self.table(
            blocks, "Data Gaps", ("Code", "Missing", "Severity", "Status")
        ):
            if severity.lower() not in severities:
                raise self.error(line, "Data Gaps", f'unknown severity "{severity}"')
            code = _fit(code, "data_gap_code", self.file, line, "Data Gaps")
            if any(row.code == code for row in self.parsed.data_gaps):
                raise self.error(line, "Data Gaps", f'"{code}" is listed twice')
            self.parsed.data_gaps.append(DataGapRow(code, severity.lower(), missing, line))

    def data_gaps(self, blocks: list[_Block]) -> None:
        listed = {row.code for row in self.parsed.data_gaps}
        for code, severity, pattern, description in DATA_GAP_PHRASES:
            if code in listed:
                continue
            for block in blocks:
                if re.search(pattern, block.text, re.I):
                    self.parsed.data_gaps.append(DataGapRow(code, severity, description, block.line))
                    break


def _cells(row: str) -> list[str]:
    inner = row.strip()
    inner = inner[1:] if inner.startswith("|") else inner
    inner = inner[:-1] if inner.endswith("|") and not inner.endswith("\\|") else inner
    return [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", inner)]


_APPROVAL_START = re.compile(r"(?:holds? approvals? from|(?:is )?approved by)\s+", re.I)
_APPROVAL_PART = re.compile(r"^(?:the\s+)?(?P<agency>[A-Z][\w .&'-]{1,60}?)\s+(?:for|under)\s+(?P<ind>.+)$")


def _approvals(block: _Block) -> list[ApprovalRow]:
    """ "holds approval from the US FDA for x, y, and from the EMA under comparable indications" → rows."""
    rows = []
    for match in _APPROVAL_START.finditer(block.text):
        clause = block.text[match.end() : _sentence_end(block.text, match.end())]
        for part in re.split(r",?\s+and (?:from|by)\s+", clause):
            if found := _APPROVAL_PART.match(part.strip()):
                rows.append(ApprovalRow(found.group("agency").strip(), found.group("ind").strip(), block.line))
    return rows


def parse_report_text(text: str, *, file_name: str, market_code: str | None = None) -> ParsedDossier:
    """Parse a report already in memory as text (tests, fixtures)."""
    return parse_report(io.BytesIO(text.encode("utf-8")), file_name=file_name, market_code=market_code)
