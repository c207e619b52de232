"""Fixtures for the evidence refresh tests: the fake APIs scripted with the seed candidate's evidence."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings

from tests.fakeapi import fakeapi  # noqa: F401  (fixture)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def seed_path():
    return django_settings.BASE_DIR / "demo" / "IN-lenalidomide.txt"
