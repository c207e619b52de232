"""Reads that users see, scoped to the markets the user may see."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.models import User as AuthUser
from django.db import models
from django.db.models import (
    Count,
    Exists,
    F,
    Min,
    OrderBy,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Window,
    prefetch_related_objects,
)
from django.db.models.functions import RowNumber
from django.shortcuts import get_object_or_404

from dossiers.models import (
    Candidate,
    CandidatePublication,
    CandidateTrial,
    CandidateVisit,
    CurationStatus,
    Dossier,
    Drug,
    DrugInteraction,
    EvidenceChange,
    ImportRun,
    Market,
    Prediction,
    RefreshRun,
)
from dossiers.permissions import sees_all_markets
from portal.roles import Role, has_role


def markets_visible_to(user: AuthUser | AnonymousUser) -> QuerySet[Market]:
    if not user.is_authenticated or not user.is_active:
        return Market.objects.none()
    if sees_all_markets(user):
        return Market.objects.all()
    return Market.objects.filter(members=user)


@dataclass(frozen=True)
class DossierExportData:
    """A dossier loaded for export: the candidate shown in full and the dossier's other candidates."""

    dossier: Dossier
    candidate: Candidate | None
    others: list[Candidate]
    all_candidates: list[Candidate]


def dossier_export_data(*, dossier: Dossier | int, candidate: Candidate | None = None) -> DossierExportData:
    """Load a dossier and one candidate with all included evidence in a constant number of queries.

    Without `candidate` the primary one (highest TxGNN score, unscored last) is exported.
    """
    dossier_pk = dossier if isinstance(dossier, int) else dossier.pk
    loaded = (
        Dossier.objects.select_related("drug", "market")
        .prefetch_related("drug__approvals", "interactions", "safety_statements", "data_gaps")
        .get(pk=dossier_pk)
    )
    return _with_candidates(loaded, candidate)


def _with_candidates(loaded: Dossier, candidate: Candidate | None) -> DossierExportData:
    """Load the dossier's candidates and the chosen one's included evidence: four queries."""
    candidates = list(
        Candidate.objects.filter(dossier=loaded).order_by(F("txgnn_score").desc(nulls_last=True), "disease", "id")
    )
    chosen = _chosen_candidate(candidates, candidate, loaded)
    if chosen is not None:
        included = CurationStatus.INCLUDED
        prefetch_related_objects(
            [chosen],
            Prefetch("trial_links", CandidateTrial.objects.filter(curation_status=included).select_related("trial")),
            Prefetch(
                "publication_links",
                CandidatePublication.objects.filter(curation_status=included).select_related("publication"),
            ),
            "conditions",
        )
    for loaded_candidate in candidates:
        loaded_candidate.dossier = loaded  # pages and __str__ reach the dossier without a query each
    others = [c for c in candidates if chosen is None or c.pk != chosen.pk]
    return DossierExportData(dossier=loaded, candidate=chosen, others=others, all_candidates=candidates)


def _chosen_candidate(candidates: list[Candidate], wanted: Candidate | None, dossier: Dossier) -> Candidate | None:
    if wanted is None:
        return candidates[0] if candidates else None
    for loaded in candidates:
        if loaded.pk == wanted.pk:
            return loaded
    raise Candidate.DoesNotExist(f"Candidate {wanted.pk} does not belong to dossier {dossier}.")


def import_runs_for(user: AuthUser | AnonymousUser, *, limit: int = 25) -> list[ImportRun]:
    """The latest import runs of the markets the user sees, and of failed runs that named no market."""
    runs = ImportRun.objects.select_related("market", "created_by")
    if not sees_all_markets(user):
        runs = runs.filter(Q(market__in=markets_visible_to(user)) | Q(market__isnull=True))
    return list(runs.order_by("-started_at", "-pk")[:limit])


# Pages: every read below is scoped to the markets the user may see; invisible objects are a 404.

BY_SCORE = F("txgnn_score").desc(nulls_last=True)
CANDIDATE_SORTS: dict[str, tuple[str | OrderBy, ...]] = {
    "score": (BY_SCORE, "id"),
    "level": ("evidence_level", BY_SCORE, "id"),  # "L1" < "L5" as text: the best level first
    "updated": ("-updated_at", "-id"),
}
SEVERITY_ORDER = [s.value for s in DrugInteraction.Severity]


def candidates_visible_to(user: AuthUser | AnonymousUser) -> QuerySet[Candidate]:
    if sees_all_markets(user):
        return Candidate.objects.all()
    return Candidate.objects.filter(dossier__market__in=markets_visible_to(user))


def candidate_list_for(user: AuthUser | AnonymousUser, filters: Mapping[str, Any] | None = None) -> QuerySet[Candidate]:
    """The candidates the user may see, filtered and sorted; one query however many rows are shown.

    `filters` holds cleaned values: market (code), drug, disease, q (either name), status, level,
    decision, min_score (0–1) and sort (a key of CANDIDATE_SORTS).
    """
    wanted = {key: value for key, value in (filters or {}).items() if value not in (None, "")}
    candidates = candidates_visible_to(user).select_related("dossier__drug", "dossier__market")
    candidates = candidates.annotate(new_evidence=new_evidence_count(user))  # "new since last review" flags
    exact = {"market": "dossier__market__code", "status": "status", "level": "evidence_level"}
    exact["decision"] = "recommended_decision"
    candidates = candidates.filter(**{exact[key]: wanted[key] for key in exact if key in wanted})
    if "drug" in wanted:
        candidates = candidates.filter(dossier__drug__name__icontains=wanted["drug"])
    if "disease" in wanted:
        candidates = candidates.filter(disease__icontains=wanted["disease"])
    if "q" in wanted:
        term = wanted["q"]
        candidates = candidates.filter(Q(dossier__drug__name__icontains=term) | Q(disease__icontains=term))
    if "min_score" in wanted:
        candidates = candidates.filter(txgnn_score__gte=wanted["min_score"])
    return candidates.order_by(*CANDIDATE_SORTS[wanted.get("sort", "score")])


def candidate_get_for(user: AuthUser | AnonymousUser, pk: int) -> Candidate:
    """The candidate with its dossier, drug and market, or Http404 when the user may not see it."""
    return get_object_or_404(candidates_visible_to(user).select_related("dossier__drug", "dossier__market"), pk=pk)


def dossier_get_for(user: AuthUser | AnonymousUser, pk: int) -> Dossier:
    """The dossier with its safety rows and derived evidence level, or Http404 when invisible.

    `evidence_level` is annotated: the best (L1 best) of the dossier's candidates, never stored.
    """
    dossiers = Dossier.objects.all()
    if not sees_all_markets(user):
        dossiers = dossiers.filter(market__in=markets_visible_to(user))
    dossiers = (
        dossiers.select_related("drug", "market")
        .prefetch_related("drug__approvals", "interactions", "safety_statements", "data_gaps")
        .annotate(evidence_level=Min("candidates__evidence_level"), candidate_count=Count("candidates"))
    )
    return get_object_or_404(dossiers, pk=pk)


def dossier_page(dossier: Dossier, candidate: Candidate | None = None) -> DossierExportData:
    """A dossier from `dossier_get_for` with its candidates; `candidate` (default: the top-scored) in full."""
    return _with_candidates(dossier, candidate)


@dataclass(frozen=True)
class SeverityGroup:
    """The dossier's named interactions of one severity, with their distinct notes."""

    severity: str
    label: str
    interactions: list[DrugInteraction]
    notes: list[str]


def interactions_by_severity(dossier: Dossier) -> list[SeverityGroup]:
    """The dossier's prefetched named interactions grouped major → unknown."""
    rows = list(dossier.interactions.all())
    groups = []
    for severity in SEVERITY_ORDER:
        group = [row for row in rows if row.severity == severity]
        if group:
            notes = list(dict.fromkeys(row.note for row in group if row.note))
            label = DrugInteraction.Severity(severity).label
            groups.append(SeverityGroup(severity=severity, label=label, interactions=group, notes=notes))
    return groups


@dataclass(frozen=True)
class DrugPage:
    """A drug with its candidates across the visible markets and its best predictions per market."""

    drug: Drug
    candidates: list[Candidate]
    predictions: list[tuple[Market, list[Prediction]]]


def drug_get_for(user: AuthUser | AnonymousUser, pk: int, *, top: int = 10) -> DrugPage:
    """The drug page's data in four queries, or Http404 when no visible market has the drug."""
    visible = markets_visible_to(user)
    drugs = Drug.objects.prefetch_related("approvals")
    if not sees_all_markets(user):
        in_visible = Q(Exists(Dossier.objects.filter(drug=OuterRef("pk"), market__in=visible)))
        drugs = drugs.filter(in_visible | Q(Exists(Prediction.objects.filter(drug=OuterRef("pk"), market__in=visible))))
    drug = get_object_or_404(drugs, pk=pk)
    candidates = list(
        Candidate.objects.filter(dossier__drug=drug, dossier__market__in=visible)
        .select_related("dossier__market")
        .order_by("dossier__market__code", BY_SCORE, "id")
    )
    return DrugPage(drug=drug, candidates=candidates, predictions=_top_predictions(drug, visible, top))


def _top_predictions(drug: Drug, markets: QuerySet[Market], top: int) -> list[tuple[Market, list[Prediction]]]:
    """The `top` best-scored predictions of the drug in each market, in one windowed query."""
    by_score = F("score").desc(nulls_last=True)
    ranked = (
        Prediction.objects.filter(drug=drug, market__in=markets)
        .annotate(place=Window(RowNumber(), partition_by=[F("market_id")], order_by=[by_score, F("id").asc()]))
        .filter(place__lte=top)
        .select_related("market")
        .order_by("market__code", "place")
    )
    grouped: dict[int, tuple[Market, list[Prediction]]] = {}
    for prediction in ranked:
        grouped.setdefault(prediction.market_id, (prediction.market, []))[1].append(prediction)
    return list(grouped.values())


# ---------------------------------------------------------------- evidence refresh

REFRESH_LOG_ROWS = 20


def refresh_runs_visible_to(user: AuthUser | AnonymousUser) -> QuerySet[RefreshRun]:
    """Query-log rows of the candidates and drugs (through their dossiers) of the user's markets."""
    runs = RefreshRun.objects.select_related("candidate__dossier__drug", "candidate__dossier__market", "drug")
    if sees_all_markets(user):
        return runs
    markets = markets_visible_to(user)
    drugs = Dossier.objects.filter(market__in=markets).values("drug_id")
    return runs.filter(Q(candidate__dossier__market__in=markets) | Q(drug_id__in=drugs))


@dataclass(frozen=True)
class RefreshPanel:
    """What the candidate page shows about evidence refresh: progress, query log, suggestions, news."""

    candidate: Candidate
    latest: list[RefreshRun]
    log: list[RefreshRun]
    suggested_trials: list[CandidateTrial]
    suggested_publications: list[CandidatePublication]
    new_changes: list[EvidenceChange]
    seen_at: datetime | None
    can_refresh: bool

    @property
    def in_progress(self) -> bool:
        return any(not run.is_done for run in self.latest)

    @property
    def queued(self) -> bool:
        """Unfinished, but no task sent yet: the runs wait for the dispatcher (a nightly batch)."""
        return self.in_progress and all(run.enqueued_at is None for run in self.latest if not run.is_done)

    @property
    def done_count(self) -> int:
        return sum(1 for run in self.latest if run.is_done)


def new_evidence_changes_for(user: AuthUser | AnonymousUser, candidate: Candidate) -> list[EvidenceChange]:
    """The candidate's evidence changes newer than the user's last review of it, newest first (50 at most)."""
    return list(_new_changes(user, EvidenceChange.objects.filter(candidate=candidate))[:50])


def refresh_panel_for(user: AuthUser | AnonymousUser, candidate: Candidate) -> RefreshPanel:
    """The refresh panel of a candidate the user can see (the caller checked visibility): four queries."""
    subject = Q(candidate=candidate) | Q(drug_id=candidate.dossier.drug_id)
    log = list(RefreshRun.objects.filter(subject).select_related("drug")[:REFRESH_LOG_ROWS])
    # The latest request's runs are the newest rows, so they are in the log already.
    latest_request = next((run.request_id for run in log if run.candidate_id == candidate.pk), None)
    latest = [run for run in log if run.request_id == latest_request] if latest_request else []
    suggested = CurationStatus.SUGGESTED
    changes = new_evidence_changes_for(user, candidate)
    seen_at = getattr(changes[0], "last_seen", None) if changes else None
    return RefreshPanel(
        candidate=candidate,
        latest=latest,
        log=log,
        # not through candidate.trial_links: on the dossier page those are prefetched with included ones only
        suggested_trials=list(
            CandidateTrial.objects.filter(candidate=candidate, curation_status=suggested)
            .select_related("trial")
            .order_by("trial__nct_id")
        ),
        suggested_publications=list(
            CandidatePublication.objects.filter(candidate=candidate, curation_status=suggested)
            .select_related("publication")
            .order_by("-publication__year", "publication__pmid")
        ),
        new_changes=changes,
        seen_at=seen_at,
        # the caller showed the candidate, so the market is visible; the service checks again on POST
        can_refresh=has_role(user, Role.CURATOR),
    )


def _new_changes(user: AuthUser | AnonymousUser, changes: QuerySet[EvidenceChange]) -> QuerySet[EvidenceChange]:
    """Changes newer than the user's last review of their candidate (all of them if never reviewed)."""
    if not user.is_authenticated:
        return changes
    last_seen = CandidateVisit.objects.filter(user=user, candidate=OuterRef("candidate")).values("seen_at")[:1]
    return changes.annotate(last_seen=Subquery(last_seen)).filter(
        Q(last_seen__isnull=True) | Q(created_at__gt=F("last_seen"))
    )


def new_evidence_count(user: AuthUser | AnonymousUser) -> Subquery:
    """Annotation: a candidate's evidence changes newer than the user's last review of it."""
    changes = _new_changes(user, EvidenceChange.objects.filter(candidate=OuterRef("pk")))
    return Subquery(
        changes.order_by().values("candidate").annotate(n=Count("id")).values("n")[:1],
        output_field=models.IntegerField(),
    )
