"""Hold a signed-in user at the two-factor step (code, or set-up when required) until it is done."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from accounts.permissions import TwoFactorStep
from accounts.two_factor import session_step

API_PREFIX = "/api/"


class TwoFactorMiddleware:
    """Redirect pages to the TOTP step or to set-up; put after django-otp's OTPMiddleware."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self._hold(request) or self.get_response(request)

    def _hold(self, request: HttpRequest) -> HttpResponse | None:
        user = request.user
        if not user.is_authenticated:
            return None
        step = session_step(request, user)  # type: ignore[arg-type]
        if step == TwoFactorStep.DONE:
            return None
        path = request.path_info
        if path.startswith(API_PREFIX):
            # A half-signed-in session is no session for the API; API tokens authenticate on their own.
            request.user = AnonymousUser()
            return None
        if path in _open_paths(step) or path.startswith("/" + settings.STATIC_URL.lstrip("/")):
            return None
        target = "accounts:two_factor_verify" if step == TwoFactorStep.VERIFY else "accounts:two_factor_setup"
        return HttpResponseRedirect(f"{reverse(target)}?{urlencode({'next': request.get_full_path()})}")


def _open_paths(step: TwoFactorStep) -> set[str]:
    """The pages a user at this step may still open."""
    if step == TwoFactorStep.VERIFY:
        return {reverse("logout"), reverse("accounts:two_factor_verify")}
    return {reverse("logout"), reverse("accounts:two_factor_setup"), reverse("accounts:two_factor_confirm")}
