"""Shared test set-up: the service markers and named personas."""

import os
from collections.abc import Iterator

import pytest
from django.db import connection

from tests.celery_worker import celery_worker  # noqa: F401  (fixture)


def _on_postgres() -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture(autouse=True)
def _require_services(request: pytest.FixtureRequest) -> None:
    """Tests marked `postgres` need PostgreSQL; in CI a missing service is a failure, never a skip."""
    if request.node.get_closest_marker("postgres") and not _on_postgres():
        if os.environ.get("CI"):
            pytest.fail("CI must run against PostgreSQL: set DATABASE_URL=postgres://…")
        pytest.skip("needs PostgreSQL: set DATABASE_URL=postgres://… (runs in CI)")
    if request.node.get_closest_marker("services") and not os.environ.get("REDIS_URL"):
        if os.environ.get("CI"):
            pytest.fail("CI must run with Redis: set REDIS_URL=redis://…")
        pytest.skip("needs Redis and a Celery worker: set REDIS_URL (runs in CI)")


@pytest.fixture(autouse=True)
def _tasks_inline_unless_a_worker_runs() -> Iterator[None]:
    """Tests run tasks inline by default; `celery_worker` switches to the real broker."""
    from portal.celery import app

    was_eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = was_eager
