"""The review workflow over the API: transitions, reviews, sign-off, conditions, comments, watching, audit, export.

Every write calls the same `reviews.services` function as the pages; no rule lives here. Objects are
looked up through access-checked selectors (invisible → 404) before the service runs (refused → 403,
wrong state → 409, bad input → 400). Writes on a candidate honour `If-Match` with its ETag (the
version): the check runs under the candidate's row lock, in the service's transaction, so two clients
holding the same ETag cannot both write (the second gets 412).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar, cast

import django_filters
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter
from rest_framework.serializers import BaseSerializer, Serializer
from rest_framework.views import APIView

from dossiers.models import Candidate, GuardrailCondition
from dossiers.report import FORMATS
from dossiers.selectors import candidate_get_for, candidates_visible_to
from dossiers.serializers import CandidateSerializer
from portal.api.errors import Conflict
from portal.api.etags import expected_version, with_etag
from reviews import selectors, services
from reviews import serializers as s
from reviews.exports import attachment, export_for
from reviews.models import TRANSITIONS, AuditEvent
from reviews.permissions import allowed_actions

T = TypeVar("T")

# ---------------------------------------------------------------- examples

USER_REF = {"id": 12, "username": "reviewer1", "full_name": "Rita Reviewer"}
CANDIDATE_EXAMPLE = {
    "id": 42,
    "dossier": 3,
    "drug": {"id": 7, "name": "Lenalidomide"},
    "market": {"id": 1, "code": "IN", "name": "India"},
    "disease": "Myeloid Leukemia",
    "title": "Lenalidomide: From Multiple Myeloma / MDS to Myeloid Leukemia",
    "txgnn_score": 0.9981,
    "txgnn_rank": 1,
    "source": "DL",
    "confidence": "high",
    "evidence_level": "L2",
    "decision_stage": "S2",
    "status": "triaged",
    "recommended_decision": "",
    "summary": "Immunomodulator with phase 2 evidence in del(5q) MDS progressing to AML.",
    "version": 6,
    "created_at": "2026-03-01T09:30:00Z",
    "updated_at": "2026-03-04T14:02:11Z",
}
REVIEW_EXAMPLE = {
    "id": 5,
    "round": 1,
    "reviewer": USER_REF,
    "recommendation": "guardrails",
    "evidence_level": "L2",
    "decision_stage": "S2",
    "rationale": "Phase 2 data in del(5q) MDS; label warnings need confirming for India.",
    "proposed_conditions": ["Confirm label warnings with CDSCO"],
    "submitted_at": "2026-03-05T10:00:00Z",
}
REVIEW_INPUT_EXAMPLE: dict[str, Any] = {
    k: REVIEW_EXAMPLE[k]
    for k in ("recommendation", "evidence_level", "decision_stage", "rationale", "proposed_conditions")
}
SIGNOFF_EXAMPLE = {
    "id": 3,
    "round": 1,
    "signer": {"id": 15, "username": "approver", "full_name": "Anna Approver"},
    "signer_name": "Anna Approver",
    "signed_at": "2026-03-06T16:20:00Z",
    "signed_timezone": "Asia/Kolkata",
    "meaning": "Approved: Proceed with Guardrails",
    "decision": "guardrails",
    "content_hash": "9f2c5e0d3b6a4f1e8c7d2a1b0e9f8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e",
    "valid": True,
    "invalidated_at": None,
    "invalidated_reason": "",
}
CONDITION_EXAMPLE = {
    "id": 9,
    "candidate": 42,
    "title": "Confirm label warnings with CDSCO",
    "detail": "",
    "category": "regulatory",
    "status": "met",
    "owner": {"id": 11, "username": "curator", "full_name": "Carl Curator"},
    "due_date": "2026-04-30",
    "resolution_note": "https://example.org/cdsco-label-2026",
    "resolved_at": "2026-03-20T09:00:00Z",
    "resolved_by": {"id": 11, "username": "curator", "full_name": "Carl Curator"},
}
COMMENT_EXAMPLE = {
    "id": 21,
    "author": {"id": 11, "username": "curator", "full_name": "Carl Curator"},
    "body": "@approver the label check is attached.",
    "mentions": ["approver"],
    "created_at": "2026-03-06T08:00:00Z",
}
ASSIGNMENT_EXAMPLE = {
    "id": 4,
    "round": 1,
    "reviewer": USER_REF,
    "assigned_at": "2026-03-04T12:00:00Z",
    "due_date": None,
}
RESOLUTION_EXAMPLE = {
    "id": 2,
    "round": 1,
    "resolved_by": {"id": 15, "username": "approver", "full_name": "Anna Approver"},
    "decision": "hold",
    "level": "L3",
    "stage": "S1",
    "note": "Reviewers disagree on the level; hold until the phase 2 results are published.",
    "resolved_at": "2026-03-06T11:00:00Z",
}
AUDIT_EXAMPLE = {
    "id": 311,
    "at": "2026-03-04T14:02:11Z",
    "actor": {"id": 11, "username": "curator", "full_name": "Carl Curator"},
    "candidate": 42,
    "dossier_id": 3,
    "object_type": "dossiers.candidate",
    "object_id": "42",
    "action": "candidate.triage",
    "from_state": "predicted",
    "to_state": "triaged",
    "reason": "",
    "changes": {"status": ["predicted", "triaged"]},
}


def _doc(
    summary: str,
    *,
    request: type[Serializer] | None,
    response: type[BaseSerializer] | BaseSerializer,
    request_example: dict[str, Any] | None = None,
    response_example: Any,
    code: int = 200,
    if_match: bool = True,
) -> Callable[[T], T]:
    """An operation's schema: summary, request and response with an example each, and If-Match."""
    examples = [OpenApiExample("Response", value=response_example, response_only=True, status_codes=[str(code)])]
    if request is not None:
        examples.append(OpenApiExample("Request", value=request_example or {}, request_only=True))
    parameters = [IF_MATCH] if if_match else []
    return cast(
        Callable[[T], T],
        extend_schema(
            summary=summary, request=request, responses={code: response}, examples=examples, parameters=parameters
        ),
    )


IF_MATCH = OpenApiParameter(
    "If-Match",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description='The candidate\'s ETag from your last read, e.g. "6". If it changed since, nothing is written (412).',
)


# ---------------------------------------------------------------- candidate workflow


@extend_schema(tags=["workflow"])
class CandidateWorkflowViewSet(viewsets.GenericViewSet):
    """Actions on one candidate: `/candidates/{id}/<action>/`."""

    serializer_class = CandidateSerializer
    lookup_value_regex = r"\d+"
    pagination_class = None

    def get_queryset(self) -> QuerySet[Candidate]:
        return candidates_visible_to(self.request.user)

    def candidate(self) -> Candidate:
        return candidate_get_for(self.request.user, int(self.kwargs["pk"]))

    def write(self, action_name: str, call: Callable[[int], T]) -> tuple[Candidate, T]:
        """Run one service call for the candidate under If-Match; return the fresh candidate and the result."""
        candidate = self.candidate()
        with transaction.atomic():
            locked = Candidate.objects.select_for_update(of=("self",)).get(pk=candidate.pk)
            expected_version(self.request, locked)
            try:
                result = call(locked.pk)
            except DjangoValidationError as exc:
                raise _as_conflict(exc, locked, action_name) from exc
        return self.candidate(), result

    def transition(self, action_name: str, call: Callable[[int], Any]) -> Response:
        candidate, _ = self.write(action_name, call)
        return with_etag(Response(CandidateSerializer(candidate).data), candidate)

    def body(self, serializer_class: type[Serializer]) -> dict[str, Any]:
        serializer = serializer_class(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    @_doc(
        "Triage: accept a predicted candidate (curator)",
        request=s.EmptyInput,
        response=CandidateSerializer,
        response_example=CANDIDATE_EXAMPLE,
    )
    @action(detail=True, methods=["post"])
    def triage(self, request: Request, pk: str) -> Response:
        return self.transition("triage", lambda cid: services.candidate_triage(candidate_id=cid, by=_user(request)))

    @_doc(
        "Deprioritize with a reason code (curator)",
        request=s.DeprioritizeInput,
        request_example={"reason_code": "other", "reason_text": "Outside the portfolio strategy for 2026."},
        response=CandidateSerializer,
        response_example={**CANDIDATE_EXAMPLE, "status": "deprioritized"},
    )
    @action(detail=True, methods=["post"])
    def deprioritize(self, request: Request, pk: str) -> Response:
        data = self.body(s.DeprioritizeInput)
        return self.transition(
            "deprioritize", lambda cid: services.candidate_deprioritize(candidate_id=cid, by=_user(request), **data)
        )

    @_doc(
        "Revive a deprioritized candidate (curator)",
        request=s.ReviveInput,
        request_example={"reason": "New phase 2 results published."},
        response=CandidateSerializer,
        response_example={**CANDIDATE_EXAMPLE, "status": "predicted"},
    )
    @action(detail=True, methods=["post"])
    def revive(self, request: Request, pk: str) -> Response:
        data = self.body(s.ReviveInput)
        return self.transition(
            "revive", lambda cid: services.candidate_revive(candidate_id=cid, by=_user(request), **data)
        )

    @_doc(
        "Start evidence curation (curator; may not then review or sign)",
        request=s.EmptyInput,
        response=CandidateSerializer,
        response_example={**CANDIDATE_EXAMPLE, "status": "in_curation"},
    )
    @action(detail=True, methods=["post"], url_path="start-curation")
    def start_curation(self, request: Request, pk: str) -> Response:
        return self.transition(
            "start_curation", lambda cid: services.candidate_start_curation(candidate_id=cid, by=_user(request))
        )

    @_doc(
        "Assign reviewers to the open round (curator or approver)",
        request=s.AssignInput,
        request_example={"reviewers": ["reviewer1", "reviewer2"], "due_date": "2026-04-01"},
        response=s.AssignmentSerializer(many=True),
        response_example=[ASSIGNMENT_EXAMPLE],
    )
    @action(detail=True, methods=["post"])
    def assign(self, request: Request, pk: str) -> Response:
        data = self.body(s.AssignInput)
        candidate, _ = self.write(
            "review_assign",
            lambda cid: services.review_assign(
                candidate_id=cid, by=_user(request), reviewers=data["reviewers"], due_date=data["due_date"]
            ),
        )
        rows = s.AssignmentSerializer(selectors.assignments_for(candidate), many=True).data
        return with_etag(Response(rows), candidate)

    @_doc(
        "Assignments of the open round",
        request=None,
        response=s.AssignmentSerializer(many=True),
        response_example=[ASSIGNMENT_EXAMPLE],
        if_match=False,
    )
    @action(detail=True, methods=["get"])
    def assignments(self, request: Request, pk: str) -> Response:
        rows = selectors.assignments_for(self.candidate())
        return Response(s.AssignmentSerializer(rows, many=True).data)

    @_doc(
        "Send to independent review (at least two reviewers, not the curator)",
        request=s.EmptyInput,
        response=CandidateSerializer,
        response_example={**CANDIDATE_EXAMPLE, "status": "in_review"},
    )
    @action(detail=True, methods=["post"], url_path="send-to-review")
    def send_to_review(self, request: Request, pk: str) -> Response:
        return self.transition(
            "send_to_review", lambda cid: services.candidate_send_to_review(candidate_id=cid, by=_user(request))
        )

    @_doc(
        "Reopen a decided candidate in a new round (approver)",
        request=s.ReopenInput,
        request_example={"reason": "New safety signal in the 2026 label update."},
        response=CandidateSerializer,
        response_example=CANDIDATE_EXAMPLE,
    )
    @action(detail=True, methods=["post"])
    def reopen(self, request: Request, pk: str) -> Response:
        data = self.body(s.ReopenInput)
        return self.transition(
            "reopen", lambda cid: services.candidate_reopen(candidate_id=cid, by=_user(request), **data)
        )

    @_doc(
        "Reviews you may read (blind: others' only once every assigned reviewer has submitted)",
        request=None,
        response=s.ReviewSerializer(many=True),
        response_example=[REVIEW_EXAMPLE],
        if_match=False,
    )
    @action(detail=True, methods=["get"])
    def reviews(self, request: Request, pk: str) -> Response:
        rows = selectors.reviews_visible_to(request.user, self.candidate())
        return Response(s.ReviewSerializer(rows, many=True).data)

    @_doc(
        "Submit your review (an assigned reviewer, once per round)",
        request=s.ReviewInput,
        request_example=REVIEW_INPUT_EXAMPLE,
        response=s.ReviewSerializer,
        response_example=REVIEW_EXAMPLE,
        code=201,
    )
    @reviews.mapping.post
    def review_submit(self, request: Request, pk: str) -> Response:
        data = self.body(s.ReviewInput)
        candidate, review = self.write(
            "review_submit", lambda cid: services.review_submit(candidate_id=cid, by=_user(request), **data)
        )
        return with_etag(Response(s.ReviewSerializer(review).data, status=status.HTTP_201_CREATED), candidate)

    @_doc(
        "Resolve a conflict between reviewers (approver or a third reviewer)",
        request=s.ConflictResolveInput,
        request_example={k: RESOLUTION_EXAMPLE[k] for k in ("decision", "level", "stage", "note")},
        response=s.ConflictResolutionSerializer,
        response_example=RESOLUTION_EXAMPLE,
        code=201,
    )
    @action(detail=True, methods=["post"], url_path="resolve-conflict")
    def resolve_conflict(self, request: Request, pk: str) -> Response:
        data = self.body(s.ConflictResolveInput)
        candidate, resolution = self.write(
            "conflict_resolve", lambda cid: services.conflict_resolve(candidate_id=cid, by=_user(request), **data)
        )
        body = s.ConflictResolutionSerializer(resolution).data
        return with_etag(Response(body, status=status.HTTP_201_CREATED), candidate)

    @_doc(
        "Sign off the decision: an electronic signature, with your password re-entered (approver)",
        request=s.SignOffInput,
        request_example={"password": "your own password", "decision": "guardrails"},
        response=s.SignOffSerializer,
        response_example=SIGNOFF_EXAMPLE,
        code=201,
    )
    @action(detail=True, methods=["post"], url_path="sign-off")
    def sign_off(self, request: Request, pk: str) -> Response:
        data = self.body(s.SignOffInput)
        candidate, signoff = self.write(
            "sign_off", lambda cid: services.signoff_create(candidate_id=cid, by=_user(request), **data)
        )
        return with_etag(Response(s.SignOffSerializer(signoff).data, status=status.HTTP_201_CREATED), candidate)

    @_doc(
        "Every signature of the candidate, valid or not, oldest first",
        request=None,
        response=s.SignOffSerializer(many=True),
        response_example=[SIGNOFF_EXAMPLE],
        if_match=False,
    )
    @action(detail=True, methods=["get"])
    def signoffs(self, request: Request, pk: str) -> Response:
        return Response(s.SignOffSerializer(selectors.signoffs_for(self.candidate()), many=True).data)

    @_doc(
        "Guardrail conditions of the candidate",
        request=None,
        response=s.ConditionTrackingSerializer(many=True),
        response_example=[CONDITION_EXAMPLE],
        if_match=False,
    )
    @action(detail=True, methods=["get"])
    def conditions(self, request: Request, pk: str) -> Response:
        return Response(s.ConditionTrackingSerializer(selectors.conditions_for(self.candidate()), many=True).data)

    @_doc(
        "Comments on the candidate, oldest first",
        request=None,
        response=s.CommentSerializer(many=True),
        response_example=[COMMENT_EXAMPLE],
        if_match=False,
    )
    @action(detail=True, methods=["get"])
    def comments(self, request: Request, pk: str) -> Response:
        return Response(s.CommentSerializer(selectors.comments_for(self.candidate()), many=True).data)

    @_doc(
        "Add a comment; @username mentions notify that user",
        request=s.CommentInput,
        request_example={"body": COMMENT_EXAMPLE["body"]},
        response=s.CommentSerializer,
        response_example=COMMENT_EXAMPLE,
        code=201,
        if_match=False,
    )
    @comments.mapping.post
    def comment_add(self, request: Request, pk: str) -> Response:
        data = self.body(s.CommentInput)
        comment = services.comment_add(candidate_id=self.candidate().pk, by=_user(request), **data)
        return Response(s.CommentSerializer(comment).data, status=status.HTTP_201_CREATED)

    @_doc(
        "Whether you watch the candidate",
        request=None,
        response=s.WatchSerializer,
        response_example={"watching": True},
        if_match=False,
    )
    @action(detail=True, methods=["get"])
    def watch(self, request: Request, pk: str) -> Response:
        return Response({"watching": selectors.is_watching(request.user, self.candidate())})

    @_doc(
        "Watch the candidate: get an email on each change (idempotent)",
        request=None,
        response=s.WatchSerializer,
        response_example={"watching": True},
        if_match=False,
    )
    @watch.mapping.put
    def watch_start(self, request: Request, pk: str) -> Response:
        services.watch(candidate_id=self.candidate().pk, by=_user(request))
        return Response({"watching": True})

    @_doc(
        "Stop watching the candidate (idempotent)",
        request=None,
        response=s.WatchSerializer,
        response_example={"watching": False},
        if_match=False,
    )
    @watch.mapping.delete
    def watch_stop(self, request: Request, pk: str) -> Response:
        services.unwatch(candidate_id=self.candidate().pk, by=_user(request))
        return Response({"watching": False})

    @_doc(
        "Where the latest review round stands: votes in, blindness, consensus (never the votes themselves)",
        request=None,
        response=s.ReviewStateSerializer,
        response_example={"round": 1, "assigned": 2, "submitted": 2, "blind": False, "consensus": "consistent"},
        if_match=False,
    )
    @action(detail=True, methods=["get"], url_path="review-state")
    def review_state(self, request: Request, pk: str) -> Response:
        return Response(s.ReviewStateSerializer(selectors.review_state(self.candidate())).data)

    @_doc(
        "The actions you may take on the candidate now",
        request=None,
        response=s.AllowedActionsSerializer,
        response_example={"actions": ["comment", "review_submit", "watch"]},
        if_match=False,
    )
    @action(detail=True, methods=["get"])
    def actions(self, request: Request, pk: str) -> Response:
        return Response({"actions": sorted(allowed_actions(request.user, self.candidate()))})


def _user(request: Request) -> User:
    """The acting user; IsAuthenticated (a default permission) has already refused anonymous requests."""
    return cast(User, request.user)


def _as_conflict(exc: DjangoValidationError, candidate: Candidate, action_name: str) -> Exception:
    """A refusal because of the candidate's state is a 409; any other ValidationError stays a 400."""
    if not hasattr(exc, "error_dict") and candidate.status not in TRANSITIONS[action_name][0]:
        return Conflict(" ".join(exc.messages))
    return exc


# ---------------------------------------------------------------- conditions


@extend_schema(tags=["workflow"])
@extend_schema_view(
    retrieve=extend_schema(
        summary="One guardrail condition",
        examples=[OpenApiExample("Condition", value=CONDITION_EXAMPLE, response_only=True)],
    )
)
class ConditionViewSet(viewsets.GenericViewSet):
    """Guardrail conditions: read one, mark it met or waive it."""

    serializer_class = s.ConditionTrackingSerializer
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> QuerySet[GuardrailCondition]:
        visible = candidates_visible_to(self.request.user)
        return GuardrailCondition.objects.filter(candidate__in=visible).select_related("owner", "resolved_by")

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(self.get_serializer(self.get_object()).data)

    def resolve(self, call: Callable[[int], GuardrailCondition]) -> Response:
        condition = self.get_object()
        with transaction.atomic():
            candidate = Candidate.objects.select_for_update(of=("self",)).get(pk=condition.candidate_id)
            expected_version(self.request, candidate)
            try:
                call(condition.pk)
            except DjangoValidationError as exc:
                raise _as_conflict(exc, candidate, "condition_mark_met") from exc
        candidate.refresh_from_db(fields=["version"])
        return with_etag(Response(self.get_serializer(self.get_object()).data), candidate)

    @_doc(
        "Mark a condition met, with evidence (its owner, a curator or an approver)",
        request=s.ConditionMetInput,
        request_example={"note": "https://example.org/cdsco-label-2026"},
        response=s.ConditionTrackingSerializer,
        response_example=CONDITION_EXAMPLE,
    )
    @action(detail=True, methods=["post"], url_path="mark-met")
    def mark_met(self, request: Request, pk: str) -> Response:
        serializer = s.ConditionMetInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        note = serializer.validated_data["note"]
        return self.resolve(lambda cid: services.condition_mark_met(condition_id=cid, by=_user(request), note=note))

    @_doc(
        "Waive a condition, with a justification (approver)",
        request=s.ConditionWaiveInput,
        request_example={"justification": "Covered by the national AML registry's monitoring."},
        response=s.ConditionTrackingSerializer,
        response_example={**CONDITION_EXAMPLE, "status": "waived"},
    )
    @action(detail=True, methods=["post"])
    def waive(self, request: Request, pk: str) -> Response:
        serializer = s.ConditionWaiveInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        text = serializer.validated_data["justification"]
        return self.resolve(
            lambda cid: services.condition_waive(condition_id=cid, by=_user(request), justification=text)
        )


# ---------------------------------------------------------------- audit events


class AuditEventFilter(django_filters.FilterSet):
    candidate = django_filters.NumberFilter(method="filter_candidate", label="The candidate's timeline (candidate id)")
    dossier = django_filters.NumberFilter(field_name="dossier_id", label="Dossier id")
    action = django_filters.CharFilter(lookup_expr="startswith", label='Action prefix, e.g. "candidate."')

    class Meta:
        model = AuditEvent
        fields: list[str] = []

    def filter_candidate(self, queryset: QuerySet[AuditEvent], name: str, value: int) -> QuerySet[AuditEvent]:
        """The candidate's own events and its dossier's (data gaps, interactions), as on the candidate page."""
        dossier_id = Candidate.objects.filter(pk=value).values_list("dossier_id", flat=True).first()
        return queryset.filter(Q(candidate_id=value) | Q(candidate__isnull=True, dossier_id=dossier_id))


@extend_schema_view(
    list=extend_schema(
        summary="Audit events you may see, oldest first",
        examples=[OpenApiExample("Triage", value=AUDIT_EXAMPLE, response_only=True)],
    ),
    retrieve=extend_schema(
        summary="One audit event", examples=[OpenApiExample("Triage", value=AUDIT_EXAMPLE, response_only=True)]
    ),
)
@extend_schema(tags=["audit"])
class AuditEventViewSet(viewsets.ReadOnlyModelViewSet):
    """The append-only history: who changed what, when, from which state to which. Read-only."""

    serializer_class = s.AuditEventSerializer
    filterset_class = AuditEventFilter
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> QuerySet[AuditEvent]:
        return selectors.audit_events_visible_to(self.request.user)


# ---------------------------------------------------------------- export


class IgnoreAcceptHeader(BaseContentNegotiation):
    """The export's format is in its URL; errors are JSON whatever the client accepts."""

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        first = next(iter(renderers))
        return (first, first.media_type)

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        return next(iter(parsers), None)


class DossierExportApi(APIView):
    """A file download, as on the dossier page; `?candidate=` picks the indication shown in full."""

    content_negotiation_class = IgnoreAcceptHeader

    @extend_schema(
        tags=["dossiers"],
        summary="Export the dossier report with its review trail (signatures, decision history)",
        operation_id="dossiers_export",
        parameters=[
            OpenApiParameter("id", int, OpenApiParameter.PATH, description="Dossier id."),
            OpenApiParameter("fmt", str, OpenApiParameter.PATH, enum=list(FORMATS), description="md, html or json"),
            OpenApiParameter(
                "candidate", int, OpenApiParameter.QUERY, required=False, description="Candidate shown in full."
            ),
        ],
        responses={
            (200, "text/markdown"): OpenApiResponse(OpenApiTypes.STR, description="The report as Markdown."),
            (200, "text/html"): OpenApiResponse(OpenApiTypes.STR, description="A printable HTML page."),
            (200, "application/json"): OpenApiResponse(OpenApiTypes.OBJECT, description="portal.dossier-export/1"),
        },
        examples=[
            OpenApiExample(
                "Markdown",
                value="# Lenalidomide: From Multiple Myeloma / MDS to Myeloid Leukemia\n\n…\n\n"
                "## Review and Sign-off\n\n"
                "- Approved: Proceed with Guardrails — signed by Anna Approver (approver) on 2026-03-06 16:20 UTC …",
                response_only=True,
                media_type="text/markdown",
            )
        ],
    )
    def get(self, request: Request, id: str, fmt: str) -> Any:
        export = export_for(
            request.user, dossier_pk=int(id), candidate_pk=request.query_params.get("candidate"), fmt=fmt
        )
        return attachment(export)


router = SimpleRouter()
router.register("candidates", CandidateWorkflowViewSet, basename="candidate-workflow")
router.register("conditions", ConditionViewSet, basename="condition")
router.register("audit-events", AuditEventViewSet, basename="audit-event")
