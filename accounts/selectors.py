"""Reads of API tokens."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db.models import QuerySet

from accounts.models import ApiToken


def tokens_for(user: User) -> QuerySet[ApiToken]:
    """The user's own tokens, newest first, revoked ones included so the history stays visible."""
    return ApiToken.objects.filter(user=user).order_by("-created_at", "-id")
