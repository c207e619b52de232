"""Fixtures for the source client tests."""

from tests.fakeapi import fakeapi  # noqa: F401  (fixture)
