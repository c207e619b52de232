"""Read-only API of markets, drugs, dossiers, candidates, predictions, trials and publications.

Every queryset starts from `markets_visible_to(user)`: another market team's objects are 404, never 403,
so their existence does not leak. Relations the serializers walk are loaded up front (query-count tests).
"""

from __future__ import annotations

from typing import Any, cast

import django_filters
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import Exists, FloatField, OuterRef, Prefetch, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import filters, mixins, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from dossiers import serializers as out
from dossiers.forms import SORT_CHOICES
from dossiers.models import (
    Candidate,
    CandidatePublication,
    CandidateTrial,
    CandidateVisit,
    ClinicalTrial,
    Decision,
    Dossier,
    Drug,
    EvidenceLevel,
    Market,
    Prediction,
    Publication,
)
from dossiers.selectors import (
    CANDIDATE_SORTS,
    candidate_list_for,
    candidates_visible_to,
    markets_visible_to,
    new_evidence_changes_for,
    new_evidence_count,
)
from dossiers.services import curation
from portal.api.errors import Conflict
from portal.api.etags import IF_MATCH_PARAMETER, ETagMixin, with_etag
from portal.api.filters import NullsLastOrderingFilter
from portal.api.pagination import PredictionCursorPagination

# ---------------------------------------------------------------- examples

MARKET_EXAMPLE = {"id": 1, "code": "IN", "name": "India", "regulator": "CDSCO", "registration_term": "registrations"}
DRUG_REF = {"id": 7, "name": "Lenalidomide"}
MARKET_REF = {"id": 1, "code": "IN", "name": "India"}
CANDIDATE_EXAMPLE = {
    "id": 42,
    "dossier": 3,
    "drug": DRUG_REF,
    "market": MARKET_REF,
    "disease": "Systemic lupus erythematosus",
    "title": "Lenalidomide: From Multiple Myeloma to Systemic Lupus Erythematosus",
    "txgnn_score": 0.9981,
    "txgnn_rank": 1,
    "source": "DL",
    "confidence": "high",
    "evidence_level": "L4",
    "decision_stage": "S1",
    "status": "in_review",
    "recommended_decision": "guardrails",
    "summary": "Immunomodulator with case-series evidence in refractory cutaneous lupus.",
    "version": 5,
    "created_at": "2026-03-01T09:30:00Z",
    "updated_at": "2026-03-04T14:02:11Z",
    "computed_evidence_level": "L2",
    "evidence_level_reasons": ["NCT01408199: Phase 2 (Completed)"],
    "evidence_refreshed_at": "2026-03-04T02:16:40Z",
    "new_evidence_count": 1,
}
DOSSIER_EXAMPLE = {
    "id": 3,
    "drug": DRUG_REF,
    "market": MARKET_REF,
    "title": "Lenalidomide: From Multiple Myeloma to Systemic Lupus Erythematosus",
    "market_status": "marketed",
    "registration_count": 12,
    "reported_indication_count": 9,
    "interaction_total": 47,
    "version": 2,
    "created_at": "2026-03-01T09:30:00Z",
    "updated_at": "2026-03-02T10:00:00Z",
}
DOSSIER_DETAIL_EXAMPLE = {
    **DOSSIER_EXAMPLE,
    "market_information": "Marketed as Lenalid and generics; 12 registrations with CDSCO.",
    "cytotoxicity_classification": "Not classed as cytotoxic; teratogen (thalidomide analogue).",
    "myelosuppression_risk": "High: neutropenia and thrombocytopenia.",
    "emetogenicity": "Minimal",
    "monitoring_items": "Blood counts weekly for 8 weeks, then monthly.",
    "handling_protection": "Do not open or crush capsules.",
    "safety_note": "Refer to the package insert for the full list of interactions.",
    "disclaimer": "",
    "interactions": [
        {
            "interacting_drug": "Digoxin",
            "severity": "moderate",
            "note": "Monitor digoxin levels.",
            "origin": "import",
            "origin_name": "IN-lenalidomide.txt",
            "origin_line": 88,
            "origin_query": "",
            "retrieved_at": None,
        }
    ],
    "safety_statements": [],
    "data_gaps": [],
}
DOSSIER_UPDATE_EXAMPLE = {
    "market_status": "marketed",
    "registration_count": 12,
    "reason": "CDSCO register checked 2026-03-02.",
}
PREDICTION_EXAMPLE = {
    "id": 90211,
    "market": MARKET_REF,
    "drug": DRUG_REF,
    "disease": "Systemic lupus erythematosus",
    "score": 0.9981,
    "rank": 1,
    "source": "DL",
    "confidence": "high",
    "license_id": "",
    "brand_name": "Lenalid",
    "imported_at": "2026-02-28T22:00:00Z",
}
TRIAL_EXAMPLE = {
    "id": 5,
    "nct_id": "NCT01408199",
    "title": "Lenalidomide in Cutaneous Lupus",
    "phase": "Phase 2",
    "status": "Completed",
    "why_stopped": "",
    "enrollment": 15,
    "start_date": "2011-08",
    "completion_date": "2014-05",
    "conditions": ["Cutaneous Lupus Erythematosus"],
    "interventions": ["Lenalidomide"],
    "brief_summary": "Open-label pilot study.",
    "has_results": True,
    "last_update": "2019-02-01",
    "registry_url": "https://clinicaltrials.gov/study/NCT01408199",
    "origin": "source",
    "origin_name": "ClinicalTrials.gov",
    "origin_line": None,
    "origin_query": "lenalidomide AND lupus",
    "retrieved_at": "2026-03-01T09:31:00Z",
}
PUBLICATION_EXAMPLE = {
    "id": 8,
    "pmid": "21445556",
    "year": 2011,
    "study_type": "Case series",
    "journal": "Arch Dermatol",
    "title": "Lenalidomide for refractory cutaneous lupus",
    "authors": ["Cortés-Hernández J", "Ávila G"],
    "doi": "",
    "abstract": "",
    "pubmed_url": "https://pubmed.ncbi.nlm.nih.gov/21445556/",
    "origin": "source",
    "origin_name": "PubMed",
    "origin_line": None,
    "origin_query": "lenalidomide lupus",
    "retrieved_at": "2026-03-01T09:31:00Z",
}


TRIAL_LINK_EXAMPLE = {
    "id": 31,
    "candidate": 42,
    "trial": TRIAL_EXAMPLE,
    "key_findings": "ORR 60 % in 15 patients with refractory cutaneous lupus.",
    "relevance": "A",
    "curation_status": "included",
    "first_seen_at": "2026-03-01T09:31:00Z",
    "changed_at": None,
    "changed_fields": [],
    "origin": "source",
    "origin_name": "ClinicalTrials.gov",
    "origin_line": None,
    "origin_query": "lenalidomide AND lupus",
    "retrieved_at": "2026-03-01T09:31:00Z",
}
PUBLICATION_LINK_EXAMPLE = {
    "id": 57,
    "candidate": 42,
    "publication": PUBLICATION_EXAMPLE,
    "key_findings": "Case series of 5; 4 responded.",
    "tier": 3,
    "curation_status": "included",
    "first_seen_at": "2026-03-01T09:31:00Z",
    "changed_at": None,
    "changed_fields": [],
    "origin": "source",
    "origin_name": "PubMed",
    "origin_line": None,
    "origin_query": "lenalidomide lupus",
    "retrieved_at": "2026-03-01T09:31:00Z",
}
EVIDENCE_CHANGE_EXAMPLE = {
    "id": 812,
    "kind": "trial_status_changed",
    "significant": False,
    "detail": {"nct_id": "NCT01408199", "fields": {"status": ["Recruiting", "Completed"]}},
    "refresh_run": 77,
    "created_at": "2026-03-04T02:16:39Z",
}
CANDIDATE_DETAIL_EXAMPLE = {
    **CANDIDATE_EXAMPLE,
    "rationale": "Cereblon modulation dampens interferon signalling implicated in lupus.",
    "conclusion_rationale": "Small uncontrolled studies only; teratogenicity needs a guardrail.",
    "trials_reported_total": 3,
    "trials_total_capped": False,
    "publications_reported_total": 12,
    "publications_total_capped": False,
    "evidence_seen_at": "2026-03-02T08:00:00Z",
    "new_evidence": [EVIDENCE_CHANGE_EXAMPLE],
    "trials": [TRIAL_LINK_EXAMPLE],
    "publications": [PUBLICATION_LINK_EXAMPLE],
    "conditions": [
        {
            "id": 9,
            "title": "Confirm label warnings with CDSCO",
            "detail": "",
            "category": "regulatory",
            "status": "open",
            "due_date": "2026-04-30",
            "resolution_note": "",
            "resolved_at": None,
        }
    ],
}
CANDIDATE_UPDATE_EXAMPLE = {
    "summary": "Immunomodulator with phase 2 evidence in refractory cutaneous lupus.",
    "evidence_level": "L2",
    "reason": "Phase 2 trial NCT01408199 included.",
}


def _examples(name: str, value: dict[str, Any]) -> dict[str, Any]:
    """The list and retrieve schemas of a read-only viewset, each with a response example."""
    return {
        "list": extend_schema(examples=[OpenApiExample(name, value=value, response_only=True)]),
        "retrieve": extend_schema(examples=[OpenApiExample(name, value=value, response_only=True)]),
    }


# ---------------------------------------------------------------- filters


class CandidateFilter(django_filters.FilterSet):
    """The candidate list page's filters under the page's names (q, drug, level, sort), and the API's own.

    The page's filters run through the page's selector (`candidate_list_for`), so a query string copied
    from the page lists the same candidates here. `min_score` is the model's 0–1 score (the page: percent).
    """

    market = django_filters.CharFilter(field_name="dossier__market__code", lookup_expr="iexact", label="Market code")
    drug = django_filters.CharFilter(
        method="filter_drug", max_length=200, label="Drug id, or part of the drug's name (as on the page)"
    )
    disease = django_filters.CharFilter(lookup_expr="icontains", label="Disease contains")
    q = django_filters.CharFilter(
        method="filter_as_page", max_length=200, label="Drug name or disease contains (the page's search box)"
    )
    status = django_filters.MultipleChoiceFilter(choices=Candidate.Status.choices, label="Status (repeatable)")
    evidence_level = django_filters.MultipleChoiceFilter(
        choices=EvidenceLevel.choices, label="Evidence level (repeatable)"
    )
    level = django_filters.ChoiceFilter(
        choices=EvidenceLevel.choices, method="filter_as_page", label="Evidence level (the page's name for it)"
    )
    decision = django_filters.ChoiceFilter(
        field_name="recommended_decision", choices=Decision.choices, label="Recommended decision"
    )
    min_score = django_filters.NumberFilter(
        field_name="txgnn_score", lookup_expr="gte", label="Minimum TxGNN score, 0–1 (the page asks for percent)"
    )
    sort = django_filters.ChoiceFilter(
        choices=SORT_CHOICES,
        method="sort_as_page",
        label="Sort as the page does: score (highest first, unscored last; the default), level (best first), "
        "updated (latest change first). `ordering` wins when both are given.",
    )

    class Meta:
        model = Candidate
        fields: list[str] = []

    def filter_as_page(self, queryset: QuerySet[Candidate], name: str, value: str) -> QuerySet[Candidate]:
        """Keep the candidates the page's selector lists for this one filter."""
        page = candidate_list_for(self.request.user, {name: value})  # type: ignore[union-attr]
        return queryset.filter(pk__in=page.values("pk"))

    def filter_drug(self, queryset: QuerySet[Candidate], name: str, value: str) -> QuerySet[Candidate]:
        if value.isdigit():  # the API's drug id, as before the page's name was accepted
            return queryset.filter(dossier__drug_id=int(value))
        return self.filter_as_page(queryset, name, value)

    def sort_as_page(self, queryset: QuerySet[Candidate], name: str, value: str) -> QuerySet[Candidate]:
        return queryset.order_by(*CANDIDATE_SORTS[value])


class DossierFilter(django_filters.FilterSet):
    market = django_filters.CharFilter(field_name="market__code", lookup_expr="iexact", label="Market code")
    drug = django_filters.NumberFilter(field_name="drug_id", label="Drug id")
    market_status = django_filters.ChoiceFilter(choices=Dossier.MarketStatus.choices)

    class Meta:
        model = Dossier
        fields: list[str] = []


class PredictionFilter(django_filters.FilterSet):
    market = django_filters.CharFilter(field_name="market__code", lookup_expr="iexact", label="Market code")
    drug = django_filters.NumberFilter(field_name="drug_id", label="Drug id")
    min_score = django_filters.NumberFilter(field_name="score", lookup_expr="gte", label="Minimum score")

    class Meta:
        model = Prediction
        fields: list[str] = []


class EvidenceFilter(django_filters.FilterSet):
    candidate = django_filters.NumberFilter(method="filter_candidate", label="Linked to candidate id")

    class Meta:
        fields: list[str] = []

    def filter_candidate(self, queryset: QuerySet[Any], name: str, value: int) -> QuerySet[Any]:
        # One filter() call, so the candidate must itself be visible: no hints about other markets.
        visible = markets_visible_to(self.request.user)  # type: ignore[union-attr]
        return queryset.filter(
            candidate_links__candidate_id=value, candidate_links__candidate__dossier__market__in=visible
        )


class TrialFilter(EvidenceFilter):
    class Meta:
        model = ClinicalTrial
        fields = ["nct_id", "phase", "status"]


class PublicationFilter(EvidenceFilter):
    class Meta:
        model = Publication
        fields = ["pmid", "year", "study_type"]


# ---------------------------------------------------------------- viewsets


class VisibleMixin:
    """`self.visible_markets()`: the markets the requesting user may see, as a subquery."""

    request: Any

    def visible_markets(self) -> QuerySet[Market]:
        return markets_visible_to(self.request.user)


@extend_schema_view(**_examples("India", MARKET_EXAMPLE))
@extend_schema(tags=["markets"])
class MarketViewSet(VisibleMixin, viewsets.ReadOnlyModelViewSet):
    """Markets of the user's teams (all markets for admins)."""

    serializer_class = out.MarketSerializer

    def get_queryset(self) -> QuerySet[Market]:
        return self.visible_markets().order_by("code")


@extend_schema_view(**_examples("Lenalidomide", {**DRUG_REF, "synonyms": ["Revlimid"], "approvals": []}))
@extend_schema(tags=["drugs"])
class DrugViewSet(VisibleMixin, viewsets.ReadOnlyModelViewSet):
    """Drugs with a dossier or a prediction in a market the user sees."""

    serializer_class = out.DrugSerializer
    filter_backends = [filters.SearchFilter, NullsLastOrderingFilter]
    search_fields = ["name", "drugbank_id"]
    ordering_fields = ["name"]

    def get_queryset(self) -> QuerySet[Drug]:
        visible = self.visible_markets()
        in_dossier = Dossier.objects.filter(drug=OuterRef("pk"), market__in=visible)
        in_prediction = Prediction.objects.filter(drug=OuterRef("pk"), market__in=visible)
        return (
            Drug.objects.filter(Q(Exists(in_dossier)) | Q(Exists(in_prediction)))
            .prefetch_related("approvals")
            .order_by("name", "id")
        )


class VersionedWriteMixin(ETagMixin):
    """PATCH through a curation service: If-Match is checked under the row lock the service then writes under."""

    def write_locked(self, model: type[Candidate] | type[Dossier], pk: int) -> Any:
        """Lock the row in the caller's transaction and refuse a stale If-Match (412); return the locked row."""
        locked = model.objects.select_for_update(of=("self",)).get(pk=pk)  # type: ignore[attr-defined]
        self.expected_version(locked)
        return locked

    def body(self, request: Request, serializer_class: type[out.StrictPatchInput]) -> tuple[dict[str, Any], str]:
        """The validated fields to change (400 otherwise) and the reason given for the audit trail."""
        serializer = serializer_class(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        fields = dict(serializer.validated_data)
        return fields, fields.pop("reason", "")


def _user(request: Request) -> User:
    """The acting user; IsAuthenticated (a default permission) has already refused anonymous requests."""
    return cast(User, request.user)


@extend_schema_view(
    list=extend_schema(examples=[OpenApiExample("Lenalidomide in India", value=DOSSIER_EXAMPLE, response_only=True)]),
    retrieve=extend_schema(
        examples=[OpenApiExample("Lenalidomide in India", value=DOSSIER_DETAIL_EXAMPLE, response_only=True)]
    ),
    partial_update=extend_schema(
        summary="Edit the dossier's market, cytotoxicity and safety profile (curators of its market)",
        request=out.DossierUpdateInput,
        responses={200: out.DossierDetailSerializer},
        parameters=[IF_MATCH_PARAMETER],
        examples=[
            OpenApiExample("Edit", value=DOSSIER_UPDATE_EXAMPLE, request_only=True),
            OpenApiExample("Edited", value=DOSSIER_DETAIL_EXAMPLE, response_only=True, status_codes=["200"]),
        ],
    ),
)
@extend_schema(tags=["dossiers"])
class DossierViewSet(
    VersionedWriteMixin, VisibleMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """One drug in one market. The detail carries an ETag (its version); PATCH honours it in If-Match."""

    filterset_class = DossierFilter
    filter_backends = [django_filters.rest_framework.DjangoFilterBackend, filters.SearchFilter, NullsLastOrderingFilter]
    search_fields = ["drug__name", "title"]
    ordering_fields = ["updated_at", "drug__name"]

    def get_queryset(self) -> QuerySet[Dossier]:
        queryset = Dossier.objects.filter(market__in=self.visible_markets()).select_related("drug", "market")
        if self.action != "list":
            queryset = queryset.prefetch_related("interactions", "safety_statements", "data_gaps")
        return queryset.order_by("drug__name", "market__code", "id")

    def get_serializer_class(self) -> type[out.DossierSerializer]:
        return out.DossierSerializer if self.action == "list" else out.DossierDetailSerializer

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        dossier = self.get_object()
        fields, reason = self.body(request, out.DossierUpdateInput)
        with transaction.atomic():
            locked = self.write_locked(Dossier, dossier.pk)
            curation.dossier_update(
                dossier_id=locked.pk, by=_user(request), expected_version=locked.version, reason=reason, **fields
            )
        updated = self.get_object()
        return with_etag(Response(self.get_serializer(updated).data), updated)


@extend_schema_view(
    list=extend_schema(
        examples=[OpenApiExample("Lenalidomide for lupus", value=CANDIDATE_EXAMPLE, response_only=True)]
    ),
    retrieve=extend_schema(
        examples=[OpenApiExample("Lenalidomide for lupus", value=CANDIDATE_DETAIL_EXAMPLE, response_only=True)]
    ),
    partial_update=extend_schema(
        summary="Edit the candidate's curated content (curators of its market)",
        description="Evidence level, stage and recommended decision only before review (409 after); the status "
        "moves through the workflow actions. A signed-off candidate edited here goes back for sign-off.",
        request=out.CandidateUpdateInput,
        responses={200: out.CandidateDetailSerializer},
        parameters=[IF_MATCH_PARAMETER],
        examples=[
            OpenApiExample("Edit", value=CANDIDATE_UPDATE_EXAMPLE, request_only=True),
            OpenApiExample("Edited", value=CANDIDATE_DETAIL_EXAMPLE, response_only=True, status_codes=["200"]),
        ],
    ),
)
@extend_schema(tags=["candidates"])
class CandidateViewSet(
    VersionedWriteMixin, VisibleMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Predicted indications under review. Filters, search and ordering as on the candidate list page."""

    filterset_class = CandidateFilter
    filter_backends = [django_filters.rest_framework.DjangoFilterBackend, filters.SearchFilter, NullsLastOrderingFilter]
    search_fields = ["disease", "title", "dossier__drug__name"]
    ordering_fields = ["txgnn_score", "txgnn_rank", "updated_at", "disease", "evidence_level", "status"]

    def get_queryset(self) -> QuerySet[Candidate]:
        user = self.request.user
        if self.action == "list":
            # The page's selector: the user's markets, "new since last review" counts, unscored last.
            return candidate_list_for(user)
        # user.pk is None only while the schema is generated (no request user): nobody's visits then.
        visits = CandidateVisit.objects.filter(user_id=user.pk or 0, candidate=OuterRef("pk"))
        seen_at = visits.values("seen_at")[:1]
        return (
            candidates_visible_to(user)
            .select_related("dossier__drug", "dossier__market")
            .annotate(new_evidence=new_evidence_count(user), evidence_seen_at=Subquery(seen_at))
            .prefetch_related(
                "conditions",
                _links("trial_links", CandidateTrial, "trial"),
                _links("publication_links", CandidatePublication, "publication"),
            )
        )

    def get_serializer_class(self) -> type[out.CandidateSerializer]:
        return out.CandidateListSerializer if self.action == "list" else out.CandidateDetailSerializer

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.detail_response(self.get_object())

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        candidate = self.get_object()
        fields, reason = self.body(request, out.CandidateUpdateInput)
        with transaction.atomic():
            locked = self.write_locked(Candidate, candidate.pk)
            try:
                curation.candidate_update(
                    candidate_id=locked.pk, by=_user(request), expected_version=locked.version, reason=reason, **fields
                )
            except DjangoValidationError as exc:
                if set(fields) - set(curation.curatable_candidate_fields(locked)):
                    raise Conflict(" ".join(exc.messages)) from exc  # decided by review in this status
                raise
        return self.detail_response(self.get_object())

    def detail_response(self, candidate: Candidate) -> Response:
        """The candidate in full, with the evidence changes that are new to the user, and its ETag."""
        candidate.new_changes = new_evidence_changes_for(self.request.user, candidate)  # type: ignore[attr-defined]
        return with_etag(Response(self.get_serializer(candidate).data), candidate)


def _links(name: str, model: type[CandidateTrial] | type[CandidatePublication], target: str) -> Prefetch:
    return Prefetch(name, model.objects.select_related(target).order_by("position", "id"))  # type: ignore[attr-defined]


@extend_schema_view(**_examples("Top prediction", PREDICTION_EXAMPLE))
@extend_schema(tags=["predictions"])
class PredictionViewSet(VisibleMixin, viewsets.ReadOnlyModelViewSet):
    """Raw TxGNN rows, highest score first, paged by cursor (`next`/`previous` links; no page numbers)."""

    serializer_class = out.PredictionSerializer
    filterset_class = PredictionFilter
    pagination_class = PredictionCursorPagination

    def get_queryset(self) -> QuerySet[Prediction]:
        # Unscored rows sort last; the cursor needs a non-null position on every row.
        return (
            Prediction.objects.filter(market__in=self.visible_markets())
            .select_related("drug", "market")
            .annotate(score_order=Coalesce("score", Value(-1.0), output_field=FloatField()))
        )


class EvidenceMixin(VisibleMixin):
    """Trials and publications are shared; one is visible when linked to a candidate of a visible market."""

    link_model: type[CandidateTrial] | type[CandidatePublication]
    link_field: str

    def visible_evidence(self, model: type[Any]) -> QuerySet[Any]:
        links = self.link_model.objects.filter(  # type: ignore[attr-defined]
            **{self.link_field: OuterRef("pk")}, candidate__dossier__market__in=self.visible_markets()
        )
        return model.objects.filter(Exists(links))


@extend_schema_view(**_examples("Lupus trial", TRIAL_EXAMPLE))
@extend_schema(tags=["evidence"])
class TrialViewSet(EvidenceMixin, viewsets.ReadOnlyModelViewSet):
    """Registered clinical trials linked to candidates the user sees."""

    serializer_class = out.TrialSerializer
    filterset_class = TrialFilter
    filter_backends = [django_filters.rest_framework.DjangoFilterBackend, filters.SearchFilter]
    search_fields = ["nct_id", "title"]
    link_model = CandidateTrial
    link_field = "trial"

    def get_queryset(self) -> QuerySet[ClinicalTrial]:
        return self.visible_evidence(ClinicalTrial).distinct().order_by("nct_id")


@extend_schema_view(**_examples("Case series", PUBLICATION_EXAMPLE))
@extend_schema(tags=["evidence"])
class PublicationViewSet(EvidenceMixin, viewsets.ReadOnlyModelViewSet):
    """PubMed articles linked to candidates the user sees."""

    serializer_class = out.PublicationSerializer
    filterset_class = PublicationFilter
    filter_backends = [django_filters.rest_framework.DjangoFilterBackend, filters.SearchFilter]
    search_fields = ["pmid", "title", "journal"]
    link_model = CandidatePublication
    link_field = "publication"

    def get_queryset(self) -> QuerySet[Publication]:
        return self.visible_evidence(Publication).distinct().order_by("pmid")


router = SimpleRouter()
router.register("markets", MarketViewSet, basename="market")
router.register("drugs", DrugViewSet, basename="drug")
router.register("dossiers", DossierViewSet, basename="dossier")
router.register("candidates", CandidateViewSet, basename="candidate")
router.register("predictions", PredictionViewSet, basename="prediction")
router.register("trials", TrialViewSet, basename="trial")
router.register("publications", PublicationViewSet, basename="publication")
