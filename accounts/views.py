"""The profile page: the user's API tokens, with create and revoke."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.forms import TokenCreateForm
from accounts.models import ApiToken
from accounts.selectors import tokens_for
from accounts.services import token_create, token_revoke


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
    context = {"form": form, "tokens": tokens_for(user), "new_secret": new_secret}
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


def _add_errors(form: TokenCreateForm, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)
