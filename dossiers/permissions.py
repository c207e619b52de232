"""Yes/no rules over (user, object) for dossiers. No request, no queries beyond the user's own."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.models import User as AuthUser

from dossiers.models import Market
from portal.roles import Role, has_role

User = AuthUser | AnonymousUser


def sees_all_markets(user: User) -> bool:
    return user.is_authenticated and (user.is_superuser or has_role(user, Role.ADMIN))


def can_view_market(user: User, market: Market) -> bool:
    if not user.is_authenticated or not user.is_active:
        return False
    if sees_all_markets(user):
        return True
    return market.members.filter(pk=user.pk).exists()


def can_curate(user: User, market: Market) -> bool:
    return has_role(user, Role.CURATOR) and can_view_market(user, market)


def can_import(user: User) -> bool:
    """Importing may create markets, so it is for curators; the market itself is checked on import."""
    return has_role(user, Role.CURATOR)
