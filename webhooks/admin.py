"""Webhooks in admin: endpoints are edited by admins; the delivery log is read-only, with a replay action."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest

from portal.roles import Role, has_role
from webhooks.models import Delivery, DeliveryAttempt, Endpoint, Event
from webhooks.services import delivery_replay


class AdminRoleOnly(admin.ModelAdmin):
    """Only the admin role (or a superuser) sees these screens, whatever model permissions a group holds."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return has_role(request.user, Role.ADMIN)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return has_role(request.user, Role.ADMIN)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return has_role(request.user, Role.ADMIN)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return has_role(request.user, Role.ADMIN)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return has_role(request.user, Role.ADMIN)


class EndpointForm(forms.ModelForm):
    url = forms.URLField(max_length=500, assume_scheme="https")
    events = forms.MultipleChoiceField(choices=Event.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = Endpoint
        fields = ["url", "secret", "events", "market", "active"]


@admin.register(Endpoint)
class EndpointAdmin(AdminRoleOnly):
    form = EndpointForm
    list_display = ["url", "events", "market", "active", "created_by", "created_at"]
    list_filter = ["active", "market"]
    search_fields = ["url"]
    readonly_fields = ["created_by", "created_at"]

    def save_model(self, request: HttpRequest, obj: Endpoint, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    fields = (
        "number",
        "at",
        "succeeded",
        "response_code",
        "error",
        "response_excerpt",
        "duration_ms",
        "replay",
        "requested_by",
    )
    readonly_fields = fields

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return has_role(request.user, Role.ADMIN)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(AdminRoleOnly):
    list_display = ["uuid", "event", "key", "endpoint", "status", "attempts", "last_response_code", "created_at"]
    list_filter = ["status", "event", "endpoint"]
    search_fields = ["key", "uuid"]
    list_select_related = ["endpoint"]
    fields = (
        "uuid",
        "endpoint",
        "event",
        "key",
        "status",
        "attempts",
        "created_at",
        "last_attempt_at",
        "next_attempt_at",
        "delivered_at",
        "last_response_code",
        "last_response_excerpt",
        "last_error",
        "replay_count",
        "replayed_by",
        "replayed_at",
        "payload",
    )
    readonly_fields = fields
    inlines = [DeliveryAttemptInline]
    actions = ["replay"]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False  # deliveries come from events, never by hand

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the log is read-only; replay is an action

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Replay the selected deliveries (same payload and delivery id; pending ones if stuck)")
    def replay(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        replayed = 0
        for delivery in queryset:
            try:
                delivery_replay(delivery_id=delivery.pk, by=request.user)  # type: ignore[arg-type]
            except (PermissionDenied, ValidationError) as exc:
                messages.error(request, f"{delivery.uuid}: {'; '.join(getattr(exc, 'messages', [str(exc)]))}")
            else:
                replayed += 1
        if replayed:
            messages.success(request, f"{replayed} deliver{'y' if replayed == 1 else 'ies'} queued for replay.")
