"""Forms of the profile page: validation and rendering only."""

from __future__ import annotations

from django import forms

from accounts.models import ApiToken


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
