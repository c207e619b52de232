"""Reads of API tokens and of the user's two-factor authenticator."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db.models import QuerySet
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import ApiToken


def tokens_for(user: User) -> QuerySet[ApiToken]:
    """The user's own tokens, newest first, revoked ones included so the history stays visible."""
    return ApiToken.objects.filter(user=user).order_by("-created_at", "-id")


def two_factor_device_for(user: User) -> TOTPDevice | None:
    """The user's confirmed authenticator, or None when two-factor is off."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


def two_factor_pending_for(user: User) -> TOTPDevice | None:
    """The authenticator key being set up (shown until the user confirms a code from it)."""
    return TOTPDevice.objects.filter(user=user, confirmed=False).select_related("user").first()
