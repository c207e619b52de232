"""API personas (those of the review tests plus an admin), token clients and a clean throttle cache."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts.models import ApiToken
from accounts.services import token_create
from portal.roles import Role
from tests.factories import make_user
from tests.reviews.conftest import (  # noqa: F401  (fixtures)
    Personas,
    _fast_password_hashing,
    candidate,
    people,
)


@pytest.fixture(autouse=True)
def _fresh_throttle_counters() -> Iterator[None]:
    """Throttle counters live in the shared cache (Redis in CI): each test starts with full budgets."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def admin(db: None) -> User:
    """An admin, member of no market team: sees every market all the same."""
    return make_user("admin", Role.ADMIN)


def token_client(user: User, scope: str = ApiToken.Scope.WRITE) -> APIClient:
    """An API client authenticated by a fresh personal token of `user`."""
    _, raw = token_create(user=user, name="test", scope=scope)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client
