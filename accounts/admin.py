"""Users (roles, market teams, deactivation) and API tokens in admin; every change goes through a service."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Exists, OuterRef, QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.forms import UserAdminForm
from accounts.models import ApiToken
from accounts.services import token_revoke, totp_disable, user_access_set, user_deactivate, user_reactivate
from portal.roles import Role


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "prefix", "scope", "created_at", "expires_at", "revoked_at", "last_used_at"]
    list_filter = ["scope"]
    search_fields = ["name", "prefix", "user__username"]
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Tokens are created by their owner on the profile page, where the secret is shown once.
        return False

    def has_change_permission(self, request: HttpRequest, obj: ApiToken | None = None) -> bool:
        return False

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        revoked = 0
        for token in queryset:
            try:
                token_revoke(token_id=token.pk, by=request.user)  # type: ignore[arg-type]
            except PermissionDenied as exc:
                messages.error(request, f"{token}: {exc}")
            else:
                revoked += 1
        messages.success(request, f"{revoked} token(s) revoked.")


admin.site.unregister(User)
# django-otp's device admin shows each authenticator's secret key, which would let an admin make codes for
# anyone; the user list's "turn off two-factor" action is the only way admins touch devices.
admin.site.unregister(TOTPDevice)


@admin.register(User)
class PortalUserAdmin(UserAdmin):
    """Users are deactivated, never deleted, so signatures and audit rows always point at a person."""

    form = UserAdminForm
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name", "email")}),
        ("Roles and market teams", {"fields": ("groups", "markets")}),
        ("Access", {"fields": ("is_active", "is_staff", "is_superuser", "user_permissions")}),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    # Activation changes only through the audited actions below.
    readonly_fields = ("is_active", "last_login", "date_joined")
    list_display = ("username", "full_name", "email", "roles", "teams", "two_factor", "is_active", "last_login")
    list_filter = ("is_active", "groups", "markets", "is_staff")
    actions = ["deactivate", "reactivate", "reset_two_factor"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        has_device = TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True)
        queryset = super().get_queryset(request).prefetch_related("groups", "markets")
        return queryset.annotate(has_two_factor=Exists(has_device))

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def save_related(self, request: HttpRequest, form: ModelForm, formsets: Any, change: bool) -> None:
        if change and "markets" in form.cleaned_data:
            # The service sets and records roles and teams; Django's own save of the form repeats the same groups.
            user_access_set(
                user_id=form.instance.pk,
                by=request.user,  # type: ignore[arg-type]
                roles=form.cleaned_data["groups"],
                markets=form.cleaned_data["markets"],
            )
        super().save_related(request, form, formsets, change)

    @admin.display(description="Name")
    def full_name(self, user: User) -> str:
        return user.get_full_name()

    @admin.display(description="Roles")
    def roles(self, user: User) -> str:
        return ", ".join(sorted(g.name for g in user.groups.all() if g.name in Role.values))

    @admin.display(description="Market teams")
    def teams(self, user: User) -> str:
        return ", ".join(sorted(m.code for m in user.markets.all()))  # type: ignore[attr-defined]

    @admin.display(description="2FA", boolean=True)
    def two_factor(self, user: User) -> bool:
        return bool(getattr(user, "has_two_factor", False))

    @admin.action(description="Deactivate the selected users (they can no longer log in)")
    def deactivate(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        self._each(request, queryset, "deactivated", lambda user: user_deactivate(user_id=user.pk, by=request.user))  # type: ignore[arg-type]

    @admin.action(description="Reactivate the selected users")
    def reactivate(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        self._each(request, queryset, "reactivated", lambda user: user_reactivate(user_id=user.pk, by=request.user))  # type: ignore[arg-type]

    @admin.action(description="Turn off two-factor for the selected users (lost phone)")
    def reset_two_factor(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        self._each(request, queryset, "reset", lambda user: totp_disable(user_id=user.pk, by=request.user))  # type: ignore[arg-type]

    def _each(self, request: HttpRequest, queryset: QuerySet[User], done: str, act: Callable[[User], object]) -> None:
        count = 0
        for user in queryset:
            try:
                act(user)
            except (ValidationError, PermissionDenied) as exc:
                messages.error(request, f"{user.username}: {' '.join(getattr(exc, 'messages', [str(exc)]))}")
            else:
                count += 1
        if count:
            messages.success(request, f"{count} user(s) {done}.")
