"""Every write of accounts: API tokens, users' roles, teams and deactivation, and two-factor enrolment."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import Group, User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import ApiToken
from accounts.permissions import can_manage_users, can_revoke_token, two_factor_required
from dossiers.models import Market
from portal.roles import Role
from reviews.models import AuditEvent

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


# ---------------------------------------------------------------- users: access and deactivation


def _audit_user(*, by: User | None, user: User, action: str, reason: str = "", changes: dict[str, list[Any]]) -> None:
    # Account events belong to no candidate or dossier, so only admins see them in the audit trail.
    AuditEvent.objects.create(
        actor=by, object_type="auth.user", object_id=str(user.pk), action=action, reason=reason, changes=changes
    )


def _lock_user(user_id: int) -> User:
    try:
        return User.objects.select_for_update().get(pk=user_id)
    except User.DoesNotExist:
        raise ValidationError(f"User {user_id} does not exist.") from None


@transaction.atomic
def user_access_set(*, user_id: int, by: User, roles: Iterable[Group], markets: Iterable[Market]) -> User:
    """Set the user's role groups and market teams, recording what changed."""
    if not can_manage_users(by):
        raise PermissionDenied("Only admins may change roles and market teams.")
    user = _lock_user(user_id)
    roles, markets = list(roles), list(markets)
    unknown = sorted(group.name for group in roles if group.name not in Role.values)
    if unknown:
        raise ValidationError({"groups": f"Not a role: {', '.join(unknown)}; roles are {', '.join(Role.values)}."})
    before_roles = sorted(user.groups.filter(name__in=Role.values).values_list("name", flat=True))
    before_markets = sorted(Market.objects.filter(members=user).values_list("code", flat=True))
    after_roles = sorted(group.name for group in roles)
    after_markets = sorted(market.code for market in markets)
    changes: dict[str, list[Any]] = {}
    if before_roles != after_roles:
        # Groups that are not roles (made by hand in admin) are left as they are.
        user.groups.set([*roles, *user.groups.exclude(name__in=Role.values)])
        changes["roles"] = [before_roles, after_roles]
    if before_markets != after_markets:
        user.markets.set(markets)  # type: ignore[attr-defined]
        changes["markets"] = [before_markets, after_markets]
    if changes:
        _audit_user(by=by, user=user, action="user.access", changes=changes)
    return user


@transaction.atomic
def user_deactivate(*, user_id: int, by: User, reason: str = "") -> User:
    """Deactivate a user: they can no longer log in or use their tokens; their records keep pointing at them."""
    if not can_manage_users(by):
        raise PermissionDenied("Only admins may deactivate users.")
    user = _lock_user(user_id)
    if user.pk == by.pk:
        raise ValidationError("You cannot deactivate yourself; ask another admin.")
    if user.is_active:
        user.is_active = False
        user.save(update_fields=["is_active"])
        _audit_user(by=by, user=user, action="user.deactivate", reason=reason, changes={"is_active": [True, False]})
    return user


@transaction.atomic
def user_reactivate(*, user_id: int, by: User, reason: str = "") -> User:
    """Let a deactivated user log in again."""
    if not can_manage_users(by):
        raise PermissionDenied("Only admins may reactivate users.")
    user = _lock_user(user_id)
    if not user.is_active:
        user.is_active = True
        user.save(update_fields=["is_active"])
        _audit_user(by=by, user=user, action="user.reactivate", reason=reason, changes={"is_active": [False, True]})
    return user


# ---------------------------------------------------------------- two-factor (TOTP, verified by django-otp)


def _code_error(device: TOTPDevice, code: str) -> str | None:
    """Check a code against the device (django-otp counts failures and slows guessing); say what is wrong."""
    allowed, info = device.verify_is_allowed()
    if not allowed:
        until = (info or {}).get("locked_until")
        when = f" after {timezone.localtime(until):%H:%M:%S}" if until else " in a moment"
        return f"Too many wrong codes. Try again{when}."
    if not device.verify_token("".join(code.split())):
        return "That code is not valid. Enter the 6-digit code your authenticator app shows now."
    return None


@transaction.atomic
def totp_enrol_start(*, user: User) -> TOTPDevice:
    """Create a new, unconfirmed authenticator key for the user (replacing an unconfirmed one)."""
    if not user.is_active:
        raise PermissionDenied("An inactive user cannot set up two-factor authentication.")
    if TOTPDevice.objects.filter(user=user, confirmed=True).exists():
        raise ValidationError("Two-factor authentication is already on; turn it off before enrolling a new app.")
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    return TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)


def totp_enrol_confirm(*, user: User, code: str) -> TOTPDevice:
    """Turn two-factor on once the user proves their app shows the right code."""
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=False).first()
        if device is None:
            raise ValidationError("There is no set-up in progress; start the two-factor set-up first.")
        error = _code_error(device, code)
        if error is None:
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            _audit_user(by=user, user=user, action="user.two_factor_on", changes={"two_factor": [False, True]})
    # Raised outside the transaction so django-otp's failure count (its guessing brake) is kept.
    if error is not None:
        raise ValidationError({"code": error})
    return device


def totp_verify(*, user: User, code: str) -> TOTPDevice:
    """The second step of logging in: the code of the user's confirmed authenticator."""
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=True).first()
        if device is None:
            raise ValidationError("Two-factor authentication is not set up for this account.")
        error = _code_error(device, code)
    if error is not None:
        raise ValidationError({"code": error})
    return device


def totp_disable(*, user_id: int, by: User, code: str = "") -> None:
    """Turn two-factor off: the user with a current code, or an admin for someone who lost their phone."""
    if by.pk != user_id and not can_manage_users(by):
        raise PermissionDenied("Only admins may turn off another user's two-factor authentication.")
    error = None
    with transaction.atomic():
        user = _lock_user(user_id)
        device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=True).first()
        if device is not None and by.pk == user.pk:
            if two_factor_required(user):
                raise PermissionDenied("Two-factor authentication is required for approvers; it cannot be turned off.")
            error = _code_error(device, code)
        if error is None:
            TOTPDevice.objects.filter(user=user).delete()
            if device is not None:
                _audit_user(by=by, user=user, action="user.two_factor_off", changes={"two_factor": [True, False]})
    # Raised outside the transaction so django-otp's failure count (its guessing brake) is kept.
    if error is not None:
        raise ValidationError({"code": error})
