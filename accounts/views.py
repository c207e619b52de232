"""The profile page (API tokens, two-factor on/off), the two-factor set-up and the TOTP step of logging in."""

from __future__ import annotations

from base64 import b32encode
from urllib.parse import urlencode

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.forms import Form
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from accounts.forms import TokenCreateForm, TwoFactorCodeForm
from accounts.models import ApiToken
from accounts.permissions import TwoFactorStep, two_factor_required
from accounts.selectors import tokens_for, two_factor_device_for, two_factor_pending_for
from accounts.services import (
    token_create,
    token_revoke,
    totp_disable,
    totp_enrol_confirm,
    totp_enrol_start,
    totp_verify,
)
from accounts.two_factor import mark_verified, remember_step, session_step


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    """List the user's tokens; on POST create one and show its secret in this response only."""
    user: User = request.user  # type: ignore[assignment]
    form = TokenCreateForm(request.POST or None)
    new_secret = None
    if request.method == "POST" and form.is_valid():
        try:
            _, new_secret = token_create(user=user, **form.cleaned_data)
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            # Rendered, not redirected: the secret must not be kept anywhere (session, message store).
            form = TokenCreateForm()
    context = {
        "form": form,
        "tokens": tokens_for(user),
        "new_secret": new_secret,
        "two_factor_device": two_factor_device_for(user),
        "two_factor_required": two_factor_required(user),
        "code_form": TwoFactorCodeForm(),
    }
    return render(request, "accounts/profile.html", context, status=201 if new_secret else 200)


@login_required
@require_POST
def token_revoke_view(request: HttpRequest, pk: int) -> HttpResponse:
    if not ApiToken.objects.filter(pk=pk, user=request.user).exists():  # type: ignore[misc]
        raise Http404("No such token.")
    try:
        token = token_revoke(token_id=pk, by=request.user)  # type: ignore[arg-type]
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
    else:
        messages.success(request, f"Token “{token.name}” revoked; it no longer works.")
    return redirect("accounts:profile")


def _add_errors(form: Form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


class PasswordResetView(auth_views.PasswordResetView):
    """Django's reset view, with text and HTML emails whose link starts at SITE_URL (not the request's host)."""

    subject_template_name = "registration/password_reset_subject.txt"
    email_template_name = "registration/password_reset_email.txt"
    html_email_template_name = "registration/password_reset_email.html"

    @property
    def extra_email_context(self) -> dict[str, str]:  # type: ignore[override]
        return {"site_url": settings.SITE_URL}


def _next_url(request: HttpRequest) -> str:
    """The page to go on to (from ?next= or the form), if it is on this site; else the home page."""
    url = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return url
    return resolve_url(settings.LOGIN_REDIRECT_URL)


def _setup_page(request: HttpRequest, form: TwoFactorCodeForm) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    if two_factor_device_for(user) is not None:
        messages.info(request, "Two-factor authentication is already on.")
        return redirect("accounts:profile")
    pending = two_factor_pending_for(user)
    context = {"form": form, "pending": pending, "next": _next_url(request), "required": two_factor_required(user)}
    if pending is not None:
        secret = b32encode(pending.bin_key).decode()
        context["otpauth_uri"] = pending.config_url
        context["secret"] = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
        # segno draws the QR code from the URI alone; no user text reaches the SVG unescaped.
        context["qr_svg"] = mark_safe(segno.make(pending.config_url).svg_inline(scale=4))
    return render(request, "accounts/two_factor_setup.html", context)


@login_required
def two_factor_setup(request: HttpRequest) -> HttpResponse:
    """Show the authenticator key being set up; POST makes a new key."""
    if request.method == "POST":
        try:
            totp_enrol_start(user=request.user)  # type: ignore[arg-type]
        except (ValidationError, PermissionDenied) as exc:
            messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
            return redirect("accounts:profile")
        return redirect(f"{reverse('accounts:two_factor_setup')}?{urlencode({'next': _next_url(request)})}")
    return _setup_page(request, TwoFactorCodeForm())


@login_required
@require_POST
def two_factor_confirm(request: HttpRequest) -> HttpResponse:
    """Turn two-factor on with a first code from the new key; this session counts as verified."""
    form = TwoFactorCodeForm(request.POST)
    if form.is_valid():
        try:
            device = totp_enrol_confirm(user=request.user, code=form.cleaned_data["code"])  # type: ignore[arg-type]
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            mark_verified(request, device)
            messages.success(request, "Two-factor authentication is on. You will be asked for a code at each login.")
            return redirect(_next_url(request) if request.POST.get("next") else "accounts:profile")
    return _setup_page(request, form)


@login_required
@require_POST
def two_factor_disable(request: HttpRequest) -> HttpResponse:
    """Turn two-factor off with a current code."""
    user: User = request.user  # type: ignore[assignment]
    form = TwoFactorCodeForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(str(error) for error in form.errors["code"]))
        return redirect("accounts:profile")
    try:
        totp_disable(user_id=user.pk, by=user, code=form.cleaned_data["code"])
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
    else:
        remember_step(request, user)
        messages.success(request, "Two-factor authentication is off.")
    return redirect("accounts:profile")


@login_required
def two_factor_verify(request: HttpRequest) -> HttpResponse:
    """The second step of logging in: the code from the user's authenticator app."""
    user: User = request.user  # type: ignore[assignment]
    if session_step(request, user) != TwoFactorStep.VERIFY:
        return redirect(_next_url(request))
    form = TwoFactorCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            device = totp_verify(user=user, code=form.cleaned_data["code"])
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            mark_verified(request, device)
            return redirect(_next_url(request))
    return render(request, "accounts/two_factor_verify.html", {"form": form, "next": _next_url(request)})
