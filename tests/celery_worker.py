"""A real Celery worker process for tests: Redis broker, the pytest test database, SIGKILL-able.

Use the `celery_worker` fixture (registered in tests/conftest.py) in a test that also uses
`transactional_db`: the worker is a separate process, so it only sees committed rows.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection

from portal.celery import app as celery_app

READY_TIMEOUT_S = 60


def _database_url() -> str:
    db = connection.settings_dict
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"


class WorkerProcess:
    """One `celery worker` subprocess; `kill()` sends SIGKILL to it and its pool children."""

    def __init__(self, *, concurrency: int, queues: str, log_path: Path, extra_env: dict[str, str]) -> None:
        self.concurrency = concurrency
        self.queues = queues
        self.log_path = log_path
        self.extra_env = extra_env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "DATABASE_URL": _database_url(), **self.extra_env}
        cmd = [
            sys.executable, "-m", "celery", "-A", "portal", "worker",
            "--loglevel=INFO", f"--concurrency={self.concurrency}", "-Q", self.queues,
            "--without-gossip", "--without-mingle", "--without-heartbeat",
            f"--hostname=test-{os.getpid()}-{time.monotonic_ns()}@localhost",
        ]  # fmt: skip
        log = self.log_path.open("ab")
        # A new session so that kill() reaches the pool children too.
        self.proc = subprocess.Popen(
            cmd, cwd=settings.BASE_DIR, env=env, stdout=log, stderr=log, start_new_session=True
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"celery worker exited early:\n{self.log_path.read_text()[-4000:]}")
            if b" ready." in self.log_path.read_bytes():
                return
            time.sleep(0.2)
        raise RuntimeError(f"celery worker not ready in {READY_TIMEOUT_S}s:\n{self.log_path.read_text()[-4000:]}")

    def kill(self) -> None:
        """SIGKILL the worker and its children at once: no warm shutdown, no acks."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._reset_ready_marker()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._reset_ready_marker()

    def restart(self) -> None:
        self.kill()
        self.start()

    def _reset_ready_marker(self) -> None:
        # The next start waits for a fresh " ready." line.
        text = self.log_path.read_bytes().replace(b" ready.", b" ready(old).")
        self.log_path.write_bytes(text)


@pytest.fixture
def celery_worker(tmp_path: Path) -> Iterator[WorkerProcess]:
    """Start a real worker on the Redis broker; tasks sent by the test go to it (not inline)."""
    broker = settings.CELERY_BROKER_URL
    if not broker:
        if os.environ.get("CI"):
            pytest.fail("CI must provide Redis for the Celery worker tests (REDIS_URL).")
        pytest.skip("needs Redis: set REDIS_URL (runs in CI)")
    if connection.vendor != "postgresql":
        if os.environ.get("CI"):
            pytest.fail("CI must run the Celery worker tests on PostgreSQL (DATABASE_URL).")
        pytest.skip("the worker needs a database it can share: set DATABASE_URL=postgres://… (runs in CI)")
    redis.Redis.from_url(broker).flushdb()  # no messages left over from an earlier run
    was_eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    worker = WorkerProcess(
        concurrency=2, queues="celery,sources,notifications", log_path=tmp_path / "worker.log", extra_env={}
    )
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()
        celery_app.conf.task_always_eager = was_eager
