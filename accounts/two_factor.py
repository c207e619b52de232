"""Where a signed-in session stands on the second factor, kept in the session so pages pay no query for it."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.http import HttpRequest
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.permissions import TwoFactorStep, two_factor_step

SESSION_KEY = "accounts_two_factor"


def session_step(request: HttpRequest, user: User) -> TwoFactorStep:
    """The step stored for this session, worked out again if missing, stale or set under another setting."""
    stored = request.session.get(SESSION_KEY)
    if (
        isinstance(stored, dict)
        and stored.get("user") == user.pk
        and stored.get("required") == settings.MFA_REQUIRED_FOR_APPROVERS
        and stored.get("step") in TwoFactorStep.__members__.values()
    ):
        return TwoFactorStep(stored["step"])
    return remember_step(request, user)


def remember_step(request: HttpRequest, user: User) -> TwoFactorStep:
    """Work out what the user owes and keep it in the session."""
    is_verified = getattr(user, "is_verified", None)
    step = two_factor_step(user, verified=bool(is_verified and is_verified()))
    request.session[SESSION_KEY] = {
        "user": user.pk,
        "required": settings.MFA_REQUIRED_FOR_APPROVERS,
        "step": step.value,
    }
    return step


def mark_verified(request: HttpRequest, device: TOTPDevice) -> None:
    """Record in the session (django-otp's key and ours) that this device's code was just accepted."""
    # A new session key as the session gains the second factor, as Django does at password login.
    request.session.cycle_key()
    otp_login(request, device)
    request.session[SESSION_KEY] = {
        "user": device.user_id,
        "required": settings.MFA_REQUIRED_FOR_APPROVERS,
        "step": TwoFactorStep.DONE.value,
    }


def on_login(sender: Any, request: HttpRequest | None, user: User, **kwargs: Any) -> None:
    """Work out the step at password login, so the pages that follow need no query for it."""
    if request is not None and hasattr(request, "session"):
        remember_step(request, user)
