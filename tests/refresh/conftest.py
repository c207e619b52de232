"""Fixtures for the evidence refresh tests: the fake APIs scripted with the seed candidate's evidence."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection

from dossiers.models import Candidate
from dossiers.services.dossier_import import dossier_import
from portal.celery import app as celery_app
from tests.celery_worker import WorkerProcess
from tests.fakeapi import fakeapi  # noqa: F401  (fixture)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def seed_path():
    return django_settings.BASE_DIR / "demo" / "IN-lenalidomide.txt"


@pytest.fixture
def seed(seed_path, db) -> Candidate:
    """The seed candidate (lenalidomide → myeloid leukemia, India), imported from the demo report."""
    dossier_import(path_or_file=seed_path, file_name=seed_path.name, market_code="IN", by=None)
    return Candidate.objects.select_related("dossier__drug").get(disease__iexact="myeloid leukemia")


def worker_env(fake_url: str, *, rate: str = "1000/s", time_limit: int = 10) -> dict[str, str]:
    """Environment for a worker process: sources at the fake, fast retries, a short visibility timeout.

    The broker redelivers an unacknowledged message (its worker was killed) once the visibility timeout
    (2 × CELERY_TASK_TIME_LIMIT) has passed: a short limit keeps the kill test short.
    """
    return {
        "CLINICALTRIALS_BASE_URL": f"{fake_url}/api/v2",
        "NCBI_EUTILS_BASE_URL": f"{fake_url}/entrez/eutils",
        "OPENFDA_BASE_URL": fake_url,
        "RXNAV_BASE_URL": fake_url,
        "NCBI_API_KEY": "",
        "OPENFDA_API_KEY": "",
        "SOURCES_MAX_RETRIES": "3",
        "SOURCES_BACKOFF_BASE": "0.01",
        "SOURCES_BACKOFF_MAX": "0.05",
        "SOURCES_CONNECT_TIMEOUT": "2",
        "SOURCES_READ_TIMEOUT": "5",
        "CLINICALTRIALS_RATE_LIMIT": rate,
        "NCBI_RATE_LIMIT": rate,
        "OPENFDA_RATE_LIMIT": rate,
        "RXNAV_RATE_LIMIT": rate,
        "CELERY_TASK_TIME_LIMIT": str(time_limit),
        "CELERY_TASK_SOFT_TIME_LIMIT": str(time_limit - 2),
        "BROKER_RESTORE_INTERVAL": "1",
    }


@pytest.fixture
def start_workers(tmp_path: Path) -> Iterator[Callable[..., list[WorkerProcess]]]:
    """Start real workers on the Redis broker with a given environment; stopped at the end of the test."""
    broker = django_settings.CELERY_BROKER_URL
    if not broker:
        if os.environ.get("CI"):
            pytest.fail("CI must provide Redis for the Celery worker tests (REDIS_URL).")
        pytest.skip("needs Redis: set REDIS_URL (runs in CI)")
    if connection.vendor != "postgresql":
        if os.environ.get("CI"):
            pytest.fail("CI must run the Celery worker tests on PostgreSQL (DATABASE_URL).")
        pytest.skip("the worker needs a database it can share: set DATABASE_URL=postgres://… (runs in CI)")
    redis.Redis.from_url(broker).flushdb()
    was_eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    started: list[WorkerProcess] = []

    def start(env: dict[str, str], *, count: int = 1, concurrency: int = 2) -> list[WorkerProcess]:
        workers = []
        for number in range(count):
            worker = WorkerProcess(
                concurrency=concurrency,
                queues="celery,sources,notifications",
                log_path=tmp_path / f"worker-{len(started)}-{number}.log",
                extra_env=env,
            )
            worker.start()
            started.append(worker)
            workers.append(worker)
        return workers

    try:
        yield start
    finally:
        for worker in started:
            worker.stop()
        celery_app.conf.task_always_eager = was_eager
