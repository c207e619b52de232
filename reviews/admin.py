"""Review workflow in admin: everything read-only; the only writes are actions that call `reviews.services`.

The audit trail can never be added to, changed or deleted here (the database refuses it too). The
curation screen of candidates (`dossiers.admin.CandidateAdmin`) is extended with the workflow's side:
triage and start-curation actions, a link to the candidate's audit trail, and a signature check after
every save, since a curation edit of signed content voids the signature.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from dossiers.admin import CandidateAdmin, DossierAdmin
from dossiers.models import Candidate, Dossier
from dossiers.permissions import sees_all_markets
from dossiers.selectors import markets_visible_to
from reviews import services
from reviews.models import (
    DECIDED_STATES,
    Assignment,
    AuditEvent,
    Comment,
    ConflictResolution,
    Deprioritization,
    Notification,
    NotificationPreference,
    Reminder,
    Review,
    ReviewRound,
    SignOff,
    Watch,
)

RECENT_CANDIDATES = 30


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


def _run_each(request: HttpRequest, rows: QuerySet[Any], call: Any, done: str) -> None:
    """Call a service per selected row; report successes and each refusal with its reason."""
    count = 0
    for row in rows:
        try:
            call(row)
        except (PermissionDenied, ValidationError) as exc:
            text = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
            messages.error(request, f"{row}: {text}")
        else:
            count += 1
    if count:
        messages.success(request, f"{count} {done}.")


class ReadOnlyAdmin(admin.ModelAdmin):
    """Workflow rows are written by services only: no add, change or delete here, for anyone."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class CandidateScopedAdmin(ReadOnlyAdmin):
    """Rows of candidates in the user's markets."""

    candidate_path = "candidate"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request)
        if sees_all_markets(request.user):
            return queryset
        return queryset.filter(**{f"{self.candidate_path}__dossier__market__in": markets_visible_to(request.user)})


# ---------------------------------------------------------------- audit trail


class EventKindFilter(admin.SimpleListFilter):
    title = "kind"
    parameter_name = "kind"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("workflow", "Workflow step (service)"), ("edit", "Row edit (database trigger)")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[AuditEvent]) -> QuerySet[AuditEvent]:
        if self.value() == "edit":
            return queryset.filter(action__startswith="row.")
        if self.value() == "workflow":
            return queryset.exclude(action__startswith="row.")
        return queryset


class RecentCandidateFilter(admin.SimpleListFilter):
    """The candidates with the latest events (a list of every candidate would be thousands long)."""

    title = "candidate"
    parameter_name = "candidate__id__exact"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        recent = (
            model_admin.get_queryset(request)
            .filter(candidate__isnull=False)
            .order_by("-at")
            .values_list("candidate_id", flat=True)[: RECENT_CANDIDATES * 20]
        )
        ids = list(dict.fromkeys(recent))[:RECENT_CANDIDATES]
        wanted = self.value()
        if wanted and wanted.isdigit() and int(wanted) not in ids:
            ids.append(int(wanted))
        found = Candidate.objects.filter(pk__in=ids).select_related("dossier__drug", "dossier__market")
        return [(str(c.pk), str(c)) for c in found]

    def queryset(self, request: HttpRequest, queryset: QuerySet[AuditEvent]) -> QuerySet[AuditEvent]:
        value = self.value()
        return queryset.filter(candidate_id=int(value)) if value and value.isdigit() else queryset


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = [
        "at",
        "action",
        "actor",
        "candidate_label",
        "object_type",
        "object_id",
        "transition",
        "reason",
        "changed",
    ]
    list_select_related = ["actor", "candidate__dossier__drug", "candidate__dossier__market"]
    list_filter = [
        EventKindFilter,
        "action",
        "object_type",
        RecentCandidateFilter,
        ("actor", admin.RelatedOnlyFieldListFilter),
    ]
    search_fields = ["action", "reason", "object_id", "actor__username", "candidate__disease"]
    ordering = ["-at", "-id"]
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[AuditEvent]:
        queryset = super().get_queryset(request)
        if sees_all_markets(request.user):
            return queryset
        # dossier-level rows (interactions, gaps) carry no candidate: scope them by their dossier
        visible = Dossier.objects.filter(market__in=markets_visible_to(request.user)).values("pk")
        return queryset.filter(dossier_id__in=visible)

    @admin.display(description="Candidate")
    def candidate_label(self, event: AuditEvent) -> str:
        return str(event.candidate) if event.candidate_id and event.candidate else "—"

    @admin.display(description="Fields changed")
    def changed(self, event: AuditEvent) -> str:
        """Names only: the before/after values are on the event's own page."""
        names = sorted(event.changes) if isinstance(event.changes, dict) else []
        shown = ", ".join(names[:6])
        return f"{shown} … (+{len(names) - 6})" if len(names) > 6 else shown

    @admin.display(description="From → to")
    def transition(self, event: AuditEvent) -> str:
        return f"{event.from_state} → {event.to_state}" if event.from_state or event.to_state else ""


# ---------------------------------------------------------------- rounds, reviews, sign-offs


@admin.register(ReviewRound)
class ReviewRoundAdmin(CandidateScopedAdmin):
    list_display = ["__str__", "candidate", "number", "opened_by", "curated_by", "opened_at", "closed_at"]
    list_select_related = ["candidate__dossier__drug", "candidate__dossier__market", "opened_by", "curated_by"]
    list_filter = ["closed_at"]
    search_fields = ["candidate__disease", "candidate__dossier__drug__name"]


@admin.register(Deprioritization)
class DeprioritizationAdmin(CandidateScopedAdmin):
    list_display = ["candidate", "reason_code", "reason_text", "by", "at"]
    list_select_related = ["candidate__dossier__drug", "candidate__dossier__market", "by"]
    list_filter = ["reason_code"]
    search_fields = ["candidate__disease", "reason_text"]


@admin.register(Assignment)
class AssignmentAdmin(CandidateScopedAdmin):
    candidate_path = "round__candidate"
    list_display = ["reviewer", "round", "assigned_by", "assigned_at", "due_date"]
    list_select_related = ["reviewer", "assigned_by", "round"]
    list_filter = ["due_date"]
    search_fields = ["reviewer__username", "round__candidate__disease"]


@admin.register(Review)
class ReviewAdmin(CandidateScopedAdmin):
    """Admins only (reviews.* permissions): blindness is a rule of the team's pages, not of the admin."""

    candidate_path = "round__candidate"
    list_display = ["reviewer", "round", "recommendation", "evidence_level", "decision_stage", "submitted_at"]
    list_select_related = ["reviewer", "round"]
    list_filter = ["recommendation", "evidence_level", "decision_stage"]
    search_fields = ["reviewer__username", "round__candidate__disease"]


@admin.register(ConflictResolution)
class ConflictResolutionAdmin(CandidateScopedAdmin):
    candidate_path = "round__candidate"
    list_display = ["round", "resolved_by", "decision", "level", "stage", "resolved_at"]
    list_select_related = ["round", "resolved_by"]
    list_filter = ["decision"]


@admin.register(SignOff)
class SignOffAdmin(CandidateScopedAdmin):
    list_display = ["meaning", "signer_name", "candidate", "signed_at", "signed_timezone", "valid", "invalidated_at"]
    list_select_related = ["candidate__dossier__drug", "candidate__dossier__market"]
    list_filter = ["valid", "decision"]
    search_fields = ["signer_name", "meaning", "candidate__disease", "content_hash"]
    actions = ["check_signature"]

    @admin.action(description="Check the signatures against the current content (voids changed ones)")
    def check_signature(self, request: HttpRequest, queryset: QuerySet[SignOff]) -> None:
        voided = [s for s in queryset if services.signature_check(candidate_id=s.candidate_id, by=_user(request))]
        messages.info(request, f"{len(voided)} signature(s) voided because the signed content changed.")


# ---------------------------------------------------------------- comments, watching, delivery


@admin.register(Comment)
class CommentAdmin(CandidateScopedAdmin):
    list_display = ["author", "candidate", "created_at", "body"]
    list_select_related = ["author", "candidate__dossier__drug", "candidate__dossier__market"]
    search_fields = ["body", "author__username", "candidate__disease"]


@admin.register(Watch)
class WatchAdmin(CandidateScopedAdmin):
    list_display = ["user", "candidate", "created_at"]
    list_select_related = ["user", "candidate__dossier__drug", "candidate__dossier__market"]
    search_fields = ["user__username", "candidate__disease"]


@admin.register(Notification)
class NotificationAdmin(CandidateScopedAdmin):
    candidate_path = "event__candidate"
    list_display = ["recipient", "reason", "state", "event", "created_at", "attempts", "sent_at"]
    list_select_related = ["recipient", "event"]
    list_filter = ["state", "reason"]
    search_fields = ["recipient__username", "message_id"]
    show_full_result_count = False


@admin.register(Reminder)
class ReminderAdmin(CandidateScopedAdmin):
    list_display = ["kind", "recipient", "candidate", "day", "due_date", "state", "sent_at"]
    list_select_related = ["recipient", "candidate__dossier__drug", "candidate__dossier__market"]
    list_filter = ["kind", "state"]
    search_fields = ["recipient__username", "message_id"]


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(ReadOnlyAdmin):
    list_display = ["user", "delivery", "updated_at"]
    list_select_related = ["user"]
    list_filter = ["delivery"]
    search_fields = ["user__username"]


# ---------------------------------------------------------------- the workflow side of curation


def _check_signatures(request: HttpRequest, candidates: QuerySet[Candidate]) -> None:
    """A curation edit of signed content voids the signature and sends the candidate back for sign-off."""
    for candidate_id in candidates.filter(status__in=DECIDED_STATES).values_list("pk", flat=True):
        voided = services.signature_check(candidate_id=candidate_id, by=_user(request))
        if voided is not None:
            messages.warning(request, f"The signature “{voided.meaning}” is void: {voided.invalidated_reason}")


admin.site.unregister(Candidate)


@admin.register(Candidate)
class WorkflowCandidateAdmin(CandidateAdmin):
    actions = ["triage", "start_curation"]
    readonly_fields = [*CandidateAdmin.readonly_fields, "audit_trail"]

    def get_fieldsets(self, request: HttpRequest, obj: Candidate | None = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        return [*fieldsets, ("History", {"fields": ["audit_trail"]})] if obj is not None else fieldsets

    @admin.display(description="Audit trail")
    def audit_trail(self, obj: Candidate) -> str:
        url = reverse("admin:reviews_auditevent_changelist") + f"?candidate__id__exact={obj.pk}"
        return format_html('<a href="{}">Every change of this candidate</a>', url)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        if change:
            _check_signatures(request, Candidate.objects.filter(pk=form.instance.pk))

    @admin.action(description="Triage the selected candidates (accept for curation)")
    def triage(self, request: HttpRequest, queryset: QuerySet[Candidate]) -> None:
        call = lambda c: services.candidate_triage(candidate_id=c.pk, by=_user(request))  # noqa: E731
        _run_each(request, queryset, call, "candidate(s) triaged")

    @admin.action(description="Start curation of the selected candidates")
    def start_curation(self, request: HttpRequest, queryset: QuerySet[Candidate]) -> None:
        call = lambda c: services.candidate_start_curation(candidate_id=c.pk, by=_user(request))  # noqa: E731
        _run_each(request, queryset, call, "candidate(s) in curation")


admin.site.unregister(Dossier)


@admin.register(Dossier)
class WorkflowDossierAdmin(DossierAdmin):
    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        if change:
            # data gaps are part of every candidate's signed content
            _check_signatures(request, Candidate.objects.filter(dossier_id=form.instance.pk))
