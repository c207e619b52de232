"""Yes/no rules over (user, token)."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User

from accounts.models import ApiToken
from portal.roles import Role, has_role


def can_revoke_token(user: User | AnonymousUser, token: ApiToken) -> bool:
    """The owner revokes their own tokens; an admin may revoke anyone's (e.g. a leaked one)."""
    if not user.is_authenticated or not user.is_active:
        return False
    return token.user_id == user.pk or has_role(user, Role.ADMIN)
