"""Every write of API tokens: create, revoke, and the check (with its last-used stamp) on each request."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import ApiToken
from accounts.permissions import can_revoke_token

TOKEN_MARK = "prt"  # "portal token": lets secret scanners and people recognise a leaked token
PREFIX_BYTES = 4
SECRET_BYTES = 32
# Stamping last_used_at on every request would write once per call; once a minute is precise enough.
LAST_USED_RESOLUTION = timedelta(minutes=1)
# Compared against when the prefix is unknown, so a miss takes as long as a wrong secret.
_DUMMY_HASH = hashlib.sha256(b"no such token").hexdigest()


class InvalidToken(Exception):
    """The presented token is malformed, unknown, revoked, expired, or its user is inactive."""


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _split(raw: str) -> str | None:
    """The prefix of a token string `prt_<prefix>_<secret>`, or None when it has not that form."""
    mark, _, rest = raw.partition("_")
    prefix, sep, secret = rest.partition("_")
    if mark != TOKEN_MARK or not sep or len(prefix) != PREFIX_BYTES * 2 or not secret:
        return None
    return prefix


@transaction.atomic
def token_create(
    *, user: User, name: str, scope: str = ApiToken.Scope.READ, expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """Create a token for `user`; return it and the token string, which is never stored and shown once."""
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Give the token a name that says what it is for."})
    if scope not in ApiToken.Scope.values:
        raise ValidationError({"scope": f"{scope!r} is not one of {', '.join(ApiToken.Scope.values)}."})
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": "The expiry must be in the future."})
    if not user.is_active:
        raise PermissionDenied("An inactive user cannot create API tokens.")
    while True:
        prefix = secrets.token_hex(PREFIX_BYTES)
        if not ApiToken.objects.filter(prefix=prefix).exists():
            break
    raw = f"{TOKEN_MARK}_{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"
    token = ApiToken.objects.create(
        user=user, name=name[:100], prefix=prefix, secret_hash=token_hash(raw), scope=scope, expires_at=expires_at
    )
    return token, raw


@transaction.atomic
def token_revoke(*, token_id: int, by: User) -> ApiToken:
    """Revoke a token at once; revoking a revoked token changes nothing."""
    try:
        token = ApiToken.objects.select_for_update().get(pk=token_id)
    except ApiToken.DoesNotExist:
        raise ValidationError(f"API token {token_id} does not exist.") from None
    if not can_revoke_token(by, token):
        raise PermissionDenied("You may only revoke your own API tokens.")
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.revoked_by = by
        token.save(update_fields=["revoked_at", "revoked_by"])
    return token


def token_authenticate(*, raw: str) -> ApiToken:
    """Find the active token for a presented token string, comparing hashes in constant time."""
    prefix = _split(raw)
    token = ApiToken.objects.select_related("user").filter(prefix=prefix).first() if prefix is not None else None
    matches = hmac.compare_digest(token.secret_hash if token else _DUMMY_HASH, token_hash(raw))
    if token is None or not matches:
        raise InvalidToken("Invalid API token.")
    if token.revoked_at is not None:
        raise InvalidToken("This API token has been revoked.")
    if token.is_expired:
        raise InvalidToken("This API token has expired.")
    if not token.user.is_active:
        raise InvalidToken("The user of this API token is inactive.")
    _touch(token)
    return token


def _touch(token: ApiToken) -> None:
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        # A plain UPDATE of one column: no lock, and two requests racing here write the same minute.
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
