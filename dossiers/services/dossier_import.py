"""Import one dossier report (text or Markdown) into markets, drugs, dossiers, candidates and evidence.

All-or-nothing and idempotent: rows are upserted by their natural keys (market code, drug name,
NCT id, PMID, …) and only saved when a value differs, so a second import of the same report, or of
its other form, writes nothing and is recorded as "unchanged". Text is stored as written; a value that
differs only in quote style (’ for ') is no change, so whichever form came first keeps its quotes.
A failed import leaves only its failed ImportRun behind.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError, models, transaction
from django.utils import timezone

from dossiers.models import (
    Candidate,
    CandidatePublication,
    CandidateTrial,
    ClinicalTrial,
    DataGap,
    Dossier,
    Drug,
    DrugApproval,
    DrugInteraction,
    GuardrailCondition,
    ImportRun,
    Market,
    Provenance,
    Publication,
    SafetyStatement,
)
from dossiers.permissions import can_curate, can_import
from dossiers.report_parser import (
    InteractionGroup,
    ParsedDossier,
    ReportError,
    fold_typography,
    parse_report,
    read_report_bytes,
    same_text,
)
from dossiers.services.curation import BEFORE_REVIEW, DECISION_FIELDS
from dossiers.services.signed_content import dossier_content_changed

CYTOTOXICITY_FIELDS = (
    "cytotoxicity_classification",
    "myelosuppression_risk",
    "emetogenicity",
    "monitoring_items",
    "handling_protection",
)
# Study types as the reports write them → the publication tier used in curation.
TIER_KEYWORDS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (1, ("meta-analysis", "systematic review", "randomized", "randomised", "rct")),
    (2, ("prospective", "cohort", "review", "observational", "retrospective")),
    (3, ("case", "basic science", "preclinical", "in vitro", "animal")),
)


@dataclass
class ImportResult:
    """What an import wrote: per table, how many rows were created, updated, unchanged or deleted."""

    run: ImportRun
    dossier: Dossier
    candidate: Candidate
    parsed: ParsedDossier
    counts: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))

    @property
    def status(self) -> str:
        return self.run.status

    def total(self, outcome: str) -> int:
        return sum(per_table.get(outcome, 0) for per_table in self.counts.values())

    @property
    def rows_written(self) -> int:
        return self.total("created") + self.total("updated") + self.total("deleted")

    def summary_lines(self) -> list[str]:
        lines = [
            f"{self.run.file_name}: {self.run.get_status_display()} — {self.dossier} → {self.candidate.disease}",
        ]
        for table in sorted(self.counts):
            per = self.counts[table]
            lines.append(
                f"  {table:<22} created {per['created']:>3}  updated {per['updated']:>3}  "
                f"unchanged {per['unchanged']:>3}  deleted {per['deleted']:>3}"
            )
        lines.append(
            f"  total                  created {self.total('created'):>3}  updated {self.total('updated'):>3}  "
            f"unchanged {self.total('unchanged'):>3}  deleted {self.total('deleted'):>3}"
        )
        return lines


def dossier_import(
    *,
    path_or_file: str | Path | IO[bytes],
    file_name: str,
    market_code: str | None,
    by: User | None,
) -> ImportResult:
    """Import a dossier report; raise ReportError (or PermissionDenied) after recording a failed ImportRun.

    `by=None` is for trusted callers (management commands, the demo loader).
    """
    if by is not None and not can_import(by):
        raise PermissionDenied("Only curators can import dossier reports.")
    digest = ""
    try:
        data = read_report_bytes(path_or_file, file_name=file_name)
        digest = hashlib.sha256(data).hexdigest()
        parsed = parse_report(data, file_name=file_name, market_code=market_code)
        with transaction.atomic():
            return _DossierWriter(parsed, by=by).write(digest)
    except (ReportError, PermissionDenied) as exc:
        _record_failure(file_name=file_name, digest=digest, market_code=market_code, by=by, error=str(exc))
        raise
    except DatabaseError as exc:
        # The parser checks every length and range it knows; anything the database still refuses is a bug,
        # but the run is recorded as failed all the same (the import's own transaction rolled back).
        error = f"the database refused the report ({type(exc).__name__}); nothing was written"
        _record_failure(file_name=file_name, digest=digest, market_code=market_code, by=by, error=error)
        raise


def _record_failure(*, file_name: str, digest: str, market_code: str | None, by: Any, error: str) -> None:
    # Runs after the import's own transaction rolled back, so this row is all that a failure leaves.
    ImportRun.objects.create(
        kind=ImportRun.Kind.DOSSIER,
        file_name=file_name[:255],
        sha256=digest,
        market=Market.objects.filter(code=(market_code or "").upper()).first(),
        status=ImportRun.Status.FAILED,
        error=error,
        created_by_id=by.pk if by is not None else None,
        finished_at=timezone.now(),
    )


class _DossierWriter:
    """Upserts one ParsedDossier; counts what it created, updated, left alone and deleted."""

    def __init__(self, parsed: ParsedDossier, *, by: User | None) -> None:
        self.parsed, self.by = parsed, by
        self.now = timezone.now()
        self.counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))

    def write(self, digest: str) -> ImportResult:
        market = self.market()
        drug = self.drug()
        dossier = self.dossier(drug, market)
        candidate = self.candidate(dossier)
        self.approvals(drug)
        self.trials(candidate)
        self.publications(candidate)
        self.interactions(dossier)
        self.safety_statements(dossier)
        self.data_gaps(dossier)
        self.conditions(candidate)
        written = sum(per["created"] + per["updated"] + per["deleted"] for per in self.counts.values())
        if written:
            # A re-import that changes a decided candidate's content voids its signature (checked after commit).
            dossier_content_changed(dossier_id=dossier.pk, by=self.by)
        run = ImportRun.objects.create(
            kind=ImportRun.Kind.DOSSIER,
            file_name=self.parsed.file_name[:255],
            sha256=digest,
            market=market,
            status=ImportRun.Status.SUCCEEDED if written else ImportRun.Status.UNCHANGED,
            rows_total=self.parsed.row_count(),
            rows_written=written,
            created_by_id=self.by.pk if self.by is not None else None,
            finished_at=timezone.now(),
        )
        return ImportResult(run=run, dossier=dossier, candidate=candidate, parsed=self.parsed, counts=self.counts)

    # ------------------------------------------------------------ generic upsert

    def provenance(self, line: int | None) -> dict[str, Any]:
        return {
            "origin": Provenance.Origin.IMPORT,
            "origin_name": self.parsed.file_name[:255],
            "origin_line": line,
            "retrieved_at": self.now,
        }

    def upsert(
        self,
        model: type[models.Model],
        found: models.Model | None,
        create: dict[str, Any],
        values: dict[str, Any],
        line: int | None = None,
    ) -> Any:
        """Create `found` from create+values, or save the values that differ; provenance goes with any write."""
        table = _table_name(model)
        extra = self.provenance(line) if issubclass(model, Provenance) else {}
        if found is None:
            self.counts[table]["created"] += 1
            return model._default_manager.create(**create, **values, **extra)
        changed = [name for name, value in values.items() if not _same_value(getattr(found, name), value)]
        if not changed:
            self.counts[table]["unchanged"] += 1
            return found
        for name, value in {**{name: values[name] for name in changed}, **extra}.items():
            setattr(found, name, value)
        fields = changed + list(extra)
        if hasattr(found, "version"):
            found.version += 1  # type: ignore[attr-defined]
            fields.append("version")
        if hasattr(found, "updated_at"):
            fields.append("updated_at")
        found.save(update_fields=fields)
        self.counts[table]["updated"] += 1
        return found

    def delete_stale(self, queryset: models.QuerySet) -> None:
        """Delete imported rows the report no longer lists; rows curators added by hand stay."""
        stale = queryset.filter(origin=Provenance.Origin.IMPORT)
        count = stale.count()
        if count:
            stale.delete()
            self.counts[_table_name(queryset.model)]["deleted"] += count

    def error(self, field_name: str, message: str) -> ReportError:
        return ReportError(self.parsed.file_name, None, field_name, message)

    # ------------------------------------------------------------ tables

    def market(self) -> Market:
        parsed = self.parsed
        code = parsed.market_code
        if not code:
            known = Market.objects.filter(name__iexact=parsed.market_name).first() if parsed.market_name else None
            if known is None:
                name = parsed.market_name or "(not stated)"
                raise self.error("market", f'cannot tell the country code of market "{name}"; pass --market CODE')
            code = known.code
        found = Market.objects.select_for_update().filter(code=code).first()
        if found is not None and self.by is not None and not can_curate(self.by, found):
            raise PermissionDenied(f"You are not a curator of market {found}.")
        market = self.upsert(
            Market,
            found,
            {"code": code, "name": parsed.market_name or code},
            {"registration_term": parsed.registration_term},
        )
        if found is None and self.by is not None:
            market.members.add(self.by)  # whoever creates a market can see what they imported
        return market

    def drug(self) -> Drug:
        parsed = self.parsed
        found = Drug.objects.filter(name__iexact=parsed.drug).first()
        # One drug serves every market: a report fills in what is blank and adds brand names, but never
        # overwrites or removes what a curator, a source (RxNorm) or another market's report put there.
        values: dict[str, Any] = {}
        if found is None or not found.original_indications:
            values["original_indications"] = parsed.original_indication
        if found is None or not found.drug_class:
            values["drug_class"] = parsed.drug_class
        known = list(found.synonyms) if found is not None else []
        new = [name for name in parsed.synonyms if not any(same_text(name, str(k)) for k in known)]
        if found is None or new:
            values["synonyms"] = known + new
        # The mechanism of action is not filled: the reports say their MoA data is missing (data gap DG002).
        return self.upsert(Drug, found, {"name": parsed.drug}, values)

    def dossier(self, drug: Drug, market: Market) -> Dossier:
        parsed = self.parsed
        cytotoxicity = dict.fromkeys(CYTOTOXICITY_FIELDS, "")
        cytotoxicity.update({row.field_name: row.content for row in parsed.cytotoxicity})
        values = {
            "title": parsed.title,
            "market_status": parsed.market_status,
            "registration_count": parsed.registration_count,
            "market_information": parsed.market_information,
            "reported_indication_count": parsed.reported_indication_count,
            "interaction_total": parsed.interaction_total,
            "safety_note": parsed.safety_note,
            "disclaimer": parsed.disclaimer,
            **cytotoxicity,
            "cytotoxicity_note": parsed.cytotoxicity_note,
        }
        found = Dossier.objects.select_for_update().filter(drug=drug, market=market).first()
        return self.upsert(Dossier, found, {"drug": drug, "market": market}, values)

    def candidate(self, dossier: Dossier) -> Candidate:
        parsed = self.parsed
        values = {
            "title": parsed.title,
            "txgnn_score": parsed.txgnn_score,
            "evidence_level": parsed.evidence_level,
            "recommended_decision": parsed.decision,
            "summary": parsed.summary,
            "rationale": parsed.rationale,
            "conclusion_rationale": parsed.conclusion_rationale,
            "trials_reported_total": parsed.trials_reported_total,
            "trials_total_capped": parsed.trials_total_capped,
            "publications_reported_total": parsed.publications_reported_total,
            "publications_total_capped": parsed.publications_total_capped,
            "trials_note": parsed.trials_note,
            "publications_note": parsed.publications_note,
        }
        rows = Candidate.objects.select_for_update().filter(dossier=dossier)
        found = next((row for row in rows if same_text(row.disease, parsed.disease)), None)
        # The workflow status is never part of `values`: a re-import leaves a candidate where review put it,
        # and once it is in review its level and decision are the reviewers' and the approver's, not the report's.
        if found is not None and found.status not in BEFORE_REVIEW:
            values = {name: value for name, value in values.items() if name not in DECISION_FIELDS}
        return self.upsert(Candidate, found, {"dossier": dossier, "disease": parsed.disease}, values)

    def approvals(self, drug: Drug) -> None:
        for row in self.parsed.approvals:
            found = DrugApproval.objects.filter(drug=drug, agency=row.agency).first()
            self.upsert(DrugApproval, found, {"drug": drug, "agency": row.agency}, {"indications": row.indications})

    def trials(self, candidate: Candidate) -> None:
        for position, row in enumerate(self.parsed.trials):
            trial = ClinicalTrial.objects.filter(nct_id=row.nct_id).first()
            values = {"phase": row.phase, "status": row.status, "enrollment": row.enrollment}
            if trial is not None and trial.origin != Provenance.Origin.IMPORT:
                # The registry (or a curator) knows a trial better than a report's copy of it.
                values = {}
            trial = self.upsert(ClinicalTrial, trial, {"nct_id": row.nct_id}, values, row.line)
            link = CandidateTrial.objects.filter(candidate=candidate, trial=trial).first()
            link_values = {"key_findings": row.key_findings, "position": position}
            self.upsert(CandidateTrial, link, {"candidate": candidate, "trial": trial}, link_values, row.line)
        listed = [row.nct_id for row in self.parsed.trials]
        self.delete_stale(CandidateTrial.objects.filter(candidate=candidate).exclude(trial__nct_id__in=listed))

    def publications(self, candidate: Candidate) -> None:
        for position, row in enumerate(self.parsed.publications):
            publication = Publication.objects.filter(pmid=row.pmid).first()
            values = {"year": row.year, "study_type": row.study_type, "journal": row.journal}
            if publication is not None and publication.origin != Provenance.Origin.IMPORT:
                values = {}
            publication = self.upsert(Publication, publication, {"pmid": row.pmid}, values, row.line)
            link = CandidatePublication.objects.filter(candidate=candidate, publication=publication).first()
            link_values = {"key_findings": row.key_findings, "position": position, "tier": _tier(row.study_type)}
            create = {"candidate": candidate, "publication": publication}
            self.upsert(CandidatePublication, link, create, link_values, row.line)
        listed = [row.pmid for row in self.parsed.publications]
        self.delete_stale(
            CandidatePublication.objects.filter(candidate=candidate).exclude(publication__pmid__in=listed)
        )

    def interactions(self, dossier: Dossier) -> None:
        position, kept = 0, []
        existing = list(DrugInteraction.objects.filter(dossier=dossier))
        for group in self.parsed.interactions:
            for name in group.names:
                found = next((row for row in existing if same_text(row.interacting_drug, name)), None)
                values = {"severity": group.severity, "note": _interaction_note(group), "position": position}
                create = {"dossier": dossier, "interacting_drug": name}
                kept.append(self.upsert(DrugInteraction, found, create, values, group.line).pk)
                position += 1
        self.delete_stale(DrugInteraction.objects.filter(dossier=dossier).exclude(pk__in=kept))

    def safety_statements(self, dossier: Dossier) -> None:
        kept = []
        existing = list(SafetyStatement.objects.filter(dossier=dossier))
        for position, row in enumerate(self.parsed.safety_statements):
            found = next(
                (s for s in existing if s.kind == row.kind and s.pk not in kept and _same_value(s.text, row.text)), None
            )
            create = {"dossier": dossier, "kind": row.kind, "text": row.text}
            statement = self.upsert(SafetyStatement, found, create, {"position": position}, row.line)
            kept.append(statement.pk)
        self.delete_stale(SafetyStatement.objects.filter(dossier=dossier).exclude(pk__in=kept))

    def data_gaps(self, dossier: Dossier) -> None:
        # Gaps are tracked by curators (resolved, not applicable): a re-import never reopens or deletes one.
        for row in self.parsed.data_gaps:
            found = DataGap.objects.filter(dossier=dossier, code=row.code).first()
            values = {"description": row.description, "severity": row.severity}
            self.upsert(DataGap, found, {"dossier": dossier, "code": row.code}, values, row.line)

    def conditions(self, candidate: Candidate) -> None:
        # Like gaps, conditions carry a curator-owned status (met, waived) that a re-import keeps.
        existing = list(GuardrailCondition.objects.filter(candidate=candidate))
        for position, row in enumerate(self.parsed.conditions):
            found = next((condition for condition in existing if same_text(condition.title, row.title)), None)
            values = {"detail": row.detail, "category": row.category, "position": position}
            self.upsert(GuardrailCondition, found, {"candidate": candidate, "title": row.title}, values)


def _same_value(stored: Any, reported: Any) -> bool:
    """Equal, or text equal but for its quote style."""
    if isinstance(stored, str) and isinstance(reported, str):
        return fold_typography(stored) == fold_typography(reported)
    return bool(stored == reported)


def _tier(study_type: str) -> int | None:
    lowered = study_type.lower()
    for tier, words in TIER_KEYWORDS:
        if any(word in lowered for word in words):
            return tier
    return None


def _table_name(model: type[models.Model]) -> str:
    return str(model._meta.verbose_name_plural).title()


def _interaction_note(group: InteractionGroup) -> str:
    """The group's note; a bracketed qualifier ("clinical significance to be evaluated") is kept as "(…)"."""
    qualifier = f"({group.qualifier})" if group.qualifier else ""
    return " ".join(part for part in (qualifier, group.note) if part)
