"""Yes/no rules over (user, token) and over a user's account: who manages users, who owes a second factor."""

from __future__ import annotations

from enum import StrEnum

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import ApiToken
from portal.roles import Role, has_role


class TwoFactorStep(StrEnum):
    DONE = "done"
    VERIFY = "verify"
    ENROL = "enrol"


def can_revoke_token(user: User | AnonymousUser, token: ApiToken) -> bool:
    """The owner revokes their own tokens; an admin may revoke anyone's (e.g. a leaked one)."""
    if not user.is_authenticated or not user.is_active:
        return False
    return token.user_id == user.pk or has_role(user, Role.ADMIN)


def can_manage_users(user: User | AnonymousUser) -> bool:
    """Admins manage roles, teams and deactivation (and so do staff given Django's change-user permission)."""
    return has_role(user, Role.ADMIN) or (user.is_active and user.has_perm("auth.change_user"))


def two_factor_required(user: User | AnonymousUser) -> bool:
    """When MFA_REQUIRED_FOR_APPROVERS is on, approvers (and admins, who hold every role) need a second factor."""
    return bool(settings.MFA_REQUIRED_FOR_APPROVERS) and has_role(user, Role.APPROVER)


def two_factor_step(user: User, *, verified: bool) -> TwoFactorStep:
    """What a signed-in user still owes before pages work: nothing, a TOTP code, or enrolling an authenticator."""
    if verified:
        return TwoFactorStep.DONE
    if TOTPDevice.objects.filter(user=user, confirmed=True).exists():
        return TwoFactorStep.VERIFY
    if two_factor_required(user):
        return TwoFactorStep.ENROL
    return TwoFactorStep.DONE
