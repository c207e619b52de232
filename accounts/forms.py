"""Forms of the profile page, the two-factor step and the admin's user page: validation and rendering only."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.contrib.auth.forms import UserChangeForm
from django.contrib.auth.models import Group
from django.core.validators import RegexValidator
from django.utils.html import format_html
from django.utils.safestring import SafeString

from accounts.models import ApiToken
from dossiers.models import Market
from portal.roles import Role


class TokenCreateForm(forms.Form):
    """Name, scope and optional expiry of a new personal API token."""

    name = forms.CharField(max_length=100, help_text='What it is for, e.g. "portfolio tracker".')
    scope = forms.ChoiceField(choices=ApiToken.Scope.choices, initial=ApiToken.Scope.READ)
    expires_at = forms.DateTimeField(
        required=False,
        label="Expires at",
        help_text="Optional, e.g. 2027-01-31 18:00 (server time zone). Leave empty for no expiry.",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )


class TwoFactorCodeForm(forms.Form):
    """The 6-digit code an authenticator app shows."""

    code = forms.CharField(
        label="Code from your authenticator app",
        max_length=10,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "one-time-code", "autofocus": True}),
        validators=[RegexValidator(r"^\s*\d{3}\s?\d{3}\s*$", "Enter the 6 digits your authenticator app shows.")],
    )


class _TeamsWidget(FilteredSelectMultiple):
    """The admin's two-box picker, wrapped like the admin wraps relation fields so it lays out the same."""

    def render(self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None) -> SafeString:
        return format_html('<div class="related-widget-wrapper">{}</div>', super().render(name, value, attrs, renderer))


class UserAdminForm(UserChangeForm):
    """The admin's user page, with the user's roles and market teams."""

    markets = forms.ModelMultipleChoiceField(
        queryset=Market.objects.all(),
        required=False,
        label="Market teams",
        help_text="The user sees the dossiers of these markets only (admins see all).",
        widget=_TeamsWidget("market teams", is_stacked=False),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        groups = self.fields["groups"]
        groups.queryset = Group.objects.filter(name__in=Role.values).order_by("name")  # type: ignore[attr-defined]
        groups.label = "Roles"
        groups.help_text = "Viewer, curator, reviewer, approver, admin; a user may hold several."
        if self.instance.pk:
            self.fields["markets"].initial = list(self.instance.markets.all())  # type: ignore[attr-defined]
