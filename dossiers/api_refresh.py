"""API of evidence refresh: the query log, "refresh this candidate", curating suggestions, "mark as reviewed".

`GET /api/v1/refresh-runs/` lists the runs of the candidates and drugs the user sees (filter by
candidate, drug, request_id, source, status); `POST /api/v1/candidates/<id>/refresh/` queues a refresh
and answers 202 with its request id and runs (a refresh already running is returned, not doubled).
`POST /api/v1/trial-links/<id>/curate/` (or `publication-links`) includes or excludes a suggested link
with its grade, as the refresh panel's buttons do; `POST /api/v1/candidates/<id>/evidence-seen/` marks the
candidate's evidence changes as reviewed by the user. Same services and permission rules as the pages.
"""

from __future__ import annotations

from typing import Any, ClassVar, cast

import django_filters
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter
from rest_framework.views import APIView

from dossiers.api import PUBLICATION_LINK_EXAMPLE, TRIAL_LINK_EXAMPLE
from dossiers.models import Candidate, CandidatePublication, CandidateTrial, RefreshRun
from dossiers.selectors import candidate_get_for, candidates_visible_to, refresh_runs_visible_to
from dossiers.serializers import CandidatePublicationSerializer, CandidateTrialSerializer, EvidenceCurateInput
from dossiers.services import refresh
from portal.api.etags import IF_MATCH_PARAMETER, expected_version, with_etag


class RefreshRunSerializer(serializers.ModelSerializer[RefreshRun]):
    """One query-log row; `status` "error" or "not_queried" is never an empty result."""

    class Meta:
        model = RefreshRun
        fields = [
            "id",
            "request_id",
            "candidate",
            "drug",
            "source",
            "query",
            "params",
            "status",
            "total_hits",
            "read_count",
            "new_count",
            "changed_count",
            "unchanged_count",
            "error",
            "created_at",
            "enqueued_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


REQUEST_ID = "3f1c9a52-8e0b-4c1e-9d2a-5b7e6f4a1c20"
RUN_EXAMPLE = {
    "id": 77,
    "request_id": REQUEST_ID,
    "candidate": 42,
    "drug": None,
    "source": "clinicaltrials",
    "query": "https://clinicaltrials.gov/api/v2/studies?query.cond=Lupus&query.intr=Lenalidomide&pageSize=100",
    "params": {"query.cond": "Lupus", "query.intr": "Lenalidomide"},
    "status": "success",
    "total_hits": 3,
    "read_count": 3,
    "new_count": 1,
    "changed_count": 1,
    "unchanged_count": 1,
    "error": "",
    "created_at": "2026-03-04T02:15:00Z",
    "enqueued_at": "2026-03-04T02:16:30Z",
    "started_at": "2026-03-04T02:16:38Z",
    "finished_at": "2026-03-04T02:16:40Z",
}
FAILED_RUN_EXAMPLE = {
    **RUN_EXAMPLE,
    "id": 78,
    "candidate": None,
    "drug": 7,
    "source": "openfda",
    "query": "https://api.fda.gov/drug/label.json?search=openfda.generic_name%3A%22lenalidomide%22&limit=1",
    "params": {"search": 'openfda.generic_name:"lenalidomide"'},
    "status": "error",
    "total_hits": None,
    "read_count": None,
    "new_count": 0,
    "changed_count": 0,
    "unchanged_count": 0,
    "error": "openFDA answered 503 three times; nothing was changed.",
}
QUEUED_RUN_EXAMPLE = {
    **RUN_EXAMPLE,
    "status": "pending",
    "total_hits": None,
    "read_count": None,
    "new_count": 0,
    "changed_count": 0,
    "unchanged_count": 0,
    "enqueued_at": None,
    "started_at": None,
    "finished_at": None,
}


class RefreshRunFilter(django_filters.FilterSet):
    class Meta:
        model = RefreshRun
        fields = ["candidate", "drug", "request_id", "source", "status"]


@extend_schema_view(
    list=extend_schema(
        summary="The query log of the candidates and drugs you see, newest first",
        examples=[
            OpenApiExample("A trial query", value=RUN_EXAMPLE, response_only=True),
            OpenApiExample("A failed label query", value=FAILED_RUN_EXAMPLE, response_only=True),
        ],
    ),
    retrieve=extend_schema(
        summary="One query-log row",
        examples=[
            OpenApiExample("A trial query", value=RUN_EXAMPLE, response_only=True),
            OpenApiExample("A failed label query", value=FAILED_RUN_EXAMPLE, response_only=True),
        ],
    ),
)
@extend_schema(tags=["evidence"])
class RefreshRunViewSet(viewsets.ReadOnlyModelViewSet[RefreshRun]):
    """Query-log rows of evidence refreshes, newest first."""

    serializer_class = RefreshRunSerializer
    filterset_class = RefreshRunFilter

    def get_queryset(self) -> QuerySet[RefreshRun]:
        return refresh_runs_visible_to(self.request.user).order_by("-created_at", "-id")


class RefreshAcceptedSerializer(serializers.Serializer[Any]):
    request_id = serializers.UUIDField()
    runs = RefreshRunSerializer(many=True)


class CandidateRefreshApi(APIView):
    """Queue a refresh of one candidate's evidence and of its drug's label and RxNorm id."""

    @extend_schema(
        tags=["evidence"],
        summary="Queue a refresh of the candidate's evidence (curators of its market)",
        description="Answers 202 with the request id and its runs; poll `GET /refresh-runs/?request_id=…`. "
        "A refresh of the candidate already running is returned instead of a second one.",
        request=None,
        responses={202: RefreshAcceptedSerializer},
        examples=[
            OpenApiExample(
                "Queued",
                value={
                    "request_id": REQUEST_ID,
                    "runs": [
                        QUEUED_RUN_EXAMPLE,
                        {**QUEUED_RUN_EXAMPLE, "id": 78, "source": "pubmed", "query": "", "params": {}},
                        {**QUEUED_RUN_EXAMPLE, "id": 79, "candidate": None, "drug": 7, "source": "rxnav"},
                        {**QUEUED_RUN_EXAMPLE, "id": 80, "candidate": None, "drug": 7, "source": "openfda"},
                    ],
                },
                response_only=True,
                status_codes=["202"],
            )
        ],
    )
    def post(self, request: Request, pk: int) -> Response:
        candidate = candidate_get_for(request.user, pk)
        user = request.user
        assert isinstance(user, User)
        queued = refresh.candidate_refresh_request(candidate_id=candidate.pk, by=user)
        runs = RefreshRun.objects.filter(request_id=queued.request_id).order_by("id")
        body = {"request_id": queued.request_id, "runs": runs}
        return Response(RefreshAcceptedSerializer(body).data, status=status.HTTP_202_ACCEPTED)


def _user(request: Request) -> User:
    user = request.user
    assert isinstance(user, User)  # noqa: S101  (IsAuthenticated, a default permission, ran first)
    return user


class EvidenceLinkCurateApi(APIView):
    """Include or exclude one trial or publication link of a candidate, with its grade and key findings."""

    kind: ClassVar[str]
    model: ClassVar[type[CandidateTrial] | type[CandidatePublication]]
    output: ClassVar[type[CandidateTrialSerializer] | type[CandidatePublicationSerializer]]

    def post(self, request: Request, pk: int) -> Response:
        visible = self.model.objects.filter(candidate__in=candidates_visible_to(request.user))  # type: ignore[attr-defined]
        link = cast(CandidateTrial | CandidatePublication, get_object_or_404(visible, pk=pk))
        data = EvidenceCurateInput(data=request.data)
        data.is_valid(raise_exception=True)
        with transaction.atomic():
            # Curation changes the candidate's evidence: its If-Match is checked under its row lock.
            candidate = Candidate.objects.select_for_update(of=("self",)).get(pk=link.candidate_id)
            expected_version(request, candidate)
            refresh.evidence_curate(kind=self.kind, link_id=link.pk, by=_user(request), **data.validated_data)
        curated = visible.select_related(self.kind).get(pk=link.pk)
        candidate.refresh_from_db(fields=["version"])
        return with_etag(Response(self.output(curated).data), candidate)


CURATE_REQUEST = {"decision": "included", "grade": "A", "key_findings": TRIAL_LINK_EXAMPLE["key_findings"]}
CURATE_DESCRIPTION = (
    "Curators of the candidate's market. Recomputes the candidate's computed evidence level (see "
    "`GET /candidates/{id}/`). If-Match takes the candidate's ETag."
)


class TrialLinkCurateApi(EvidenceLinkCurateApi):
    kind, model, output = "trial", CandidateTrial, CandidateTrialSerializer

    @extend_schema(
        tags=["evidence"],
        operation_id="trial_links_curate",
        summary="Include or exclude a trial for its candidate (grade: relevance A, B or C)",
        description=CURATE_DESCRIPTION,
        request=EvidenceCurateInput,
        responses={200: CandidateTrialSerializer},
        parameters=[IF_MATCH_PARAMETER],
        examples=[
            OpenApiExample("Include", value=CURATE_REQUEST, request_only=True),
            OpenApiExample("Included", value=TRIAL_LINK_EXAMPLE, response_only=True, status_codes=["200"]),
        ],
    )
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)


class PublicationLinkCurateApi(EvidenceLinkCurateApi):
    kind, model, output = "publication", CandidatePublication, CandidatePublicationSerializer

    @extend_schema(
        tags=["evidence"],
        operation_id="publication_links_curate",
        summary="Include or exclude a publication for its candidate (grade: tier 1, 2 or 3)",
        description=CURATE_DESCRIPTION,
        request=EvidenceCurateInput,
        responses={200: CandidatePublicationSerializer},
        parameters=[IF_MATCH_PARAMETER],
        examples=[
            OpenApiExample(
                "Include",
                value={**CURATE_REQUEST, "grade": "3", "key_findings": "Case series of 5."},
                request_only=True,
            ),
            OpenApiExample("Included", value=PUBLICATION_LINK_EXAMPLE, response_only=True, status_codes=["200"]),
        ],
    )
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)


class EvidenceSeenSerializer(serializers.Serializer[Any]):
    candidate = serializers.IntegerField()
    seen_at = serializers.DateTimeField(help_text="Changes after this are new to you again.")


class CandidateEvidenceSeenApi(APIView):
    """ "Mark as reviewed": the candidate's evidence changes so far stop being new for the requesting user."""

    @extend_schema(
        tags=["evidence"],
        operation_id="candidates_evidence_seen",
        summary="Mark the candidate's evidence changes as reviewed by you",
        description="Anyone who can see the candidate; `new_evidence_count` of the candidate is then 0 for you.",
        request=None,
        responses={200: EvidenceSeenSerializer},
        examples=[
            OpenApiExample(
                "Seen",
                value={"candidate": 42, "seen_at": "2026-03-04T09:12:00Z"},
                response_only=True,
                status_codes=["200"],
            )
        ],
    )
    def post(self, request: Request, pk: int) -> Response:
        candidate = candidate_get_for(request.user, pk)
        visit = refresh.candidate_mark_seen(candidate_id=candidate.pk, by=_user(request))
        return Response(EvidenceSeenSerializer({"candidate": candidate.pk, "seen_at": visit.seen_at}).data)


router = SimpleRouter()
router.register("refresh-runs", RefreshRunViewSet, basename="refresh-run")

urlpatterns = [
    path("candidates/<int:pk>/refresh/", CandidateRefreshApi.as_view(), name="candidate-refresh"),
    path("candidates/<int:pk>/evidence-seen/", CandidateEvidenceSeenApi.as_view(), name="candidate-evidence-seen"),
    path("trial-links/<int:pk>/curate/", TrialLinkCurateApi.as_view(), name="trial-link-curate"),
    path("publication-links/<int:pk>/curate/", PublicationLinkCurateApi.as_view(), name="publication-link-curate"),
    *router.urls,
]
