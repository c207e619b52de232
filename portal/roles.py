"""The team roles. Each is a Django Group; a user may hold several."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib.auth.models import Group, Permission
from django.db import models

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    CURATOR = "curator", "Curator"
    REVIEWER = "reviewer", "Reviewer"
    APPROVER = "approver", "Approver"
    ADMIN = "admin", "Admin"


# Django model permissions each role gets, so that Django admin (curation) shows the right screens.
# Object rules (which market, which candidate) live in the apps' permissions.py, not here.
ADMIN_SITE_PERMISSIONS: dict[Role, tuple[str, ...]] = {
    Role.VIEWER: ("dossiers.view_",),
    Role.CURATOR: ("dossiers.view_", "dossiers.add_", "dossiers.change_"),
    Role.REVIEWER: ("dossiers.view_",),
    Role.APPROVER: ("dossiers.view_",),
    Role.ADMIN: ("dossiers.", "reviews.", "auth."),
}


def ensure_role_groups() -> None:
    """Create the role groups with their admin-site permissions; safe to call repeatedly."""
    for role in Role:
        group, _ = Group.objects.get_or_create(name=role.value)
        wanted = [
            perm.pk
            for perm in Permission.objects.select_related("content_type")
            if f"{perm.content_type.app_label}.{perm.codename}".startswith(ADMIN_SITE_PERMISSIONS[role])
        ]
        group.permissions.set(wanted)


def has_role(user: User | AnonymousUser, role: Role) -> bool:
    """True when the active user holds the role; superusers and admins hold every role."""
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser:
        return True
    names = _group_names(user)
    return role.value in names or Role.ADMIN.value in names


def _group_names(user: User) -> frozenset[str]:
    # Cached on the user object: permission checks run many times per request.
    cached = getattr(user, "_role_names", None)
    if cached is None:
        cached = frozenset(user.groups.values_list("name", flat=True))  # type: ignore[attr-defined]
        user._role_names = cached  # type: ignore[attr-defined]
    return cached
