"""API of evidence refresh: the query log (read) and "refresh this candidate" (curators of its market).

`GET /api/v1/refresh-runs/` lists the runs of the candidates and drugs the user sees (filter by
candidate, drug, request_id, source, status); `POST /api/v1/candidates/<id>/refresh/` queues a refresh
and answers 202 with its request id and runs (a refresh already running is returned, not doubled).
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter
from rest_framework.views import APIView

from dossiers.models import RefreshRun
from dossiers.selectors import candidate_get_for, refresh_runs_visible_to
from dossiers.services import refresh


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
            "new_count",
            "changed_count",
            "unchanged_count",
            "error",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class RefreshRunFilter(django_filters.FilterSet):
    class Meta:
        model = RefreshRun
        fields = ["candidate", "drug", "request_id", "source", "status"]


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

    @extend_schema(tags=["evidence"], request=None, responses={202: RefreshAcceptedSerializer})
    def post(self, request: Request, pk: int) -> Response:
        candidate = candidate_get_for(request.user, pk)
        user = request.user
        assert isinstance(user, User)
        queued = refresh.candidate_refresh_request(candidate_id=candidate.pk, by=user)
        runs = RefreshRun.objects.filter(request_id=queued.request_id).order_by("id")
        body = {"request_id": queued.request_id, "runs": runs}
        return Response(RefreshAcceptedSerializer(body).data, status=status.HTTP_202_ACCEPTED)


router = SimpleRouter()
router.register("refresh-runs", RefreshRunViewSet, basename="refresh-run")

urlpatterns = [
    path("candidates/<int:pk>/refresh/", CandidateRefreshApi.as_view(), name="candidate-refresh"),
    *router.urls,
]
