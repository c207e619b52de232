"""The acceptance test: a real Celery worker sends 200 emails to a real SMTP server, is SIGKILLed mid-batch,
restarts, and every email arrives exactly once (counted by Message-ID at the server).

Where the kill lands: the server holds every RCPT once it has accepted `HOLD_AFTER` messages, the test
waits until both pool processes are held there, then kills. So each killed send is mid-conversation,
before the end of DATA: the server has nothing of it, the rows are left "sending", and they must be sent
after the lease, exactly once. The one window this test does not hit on purpose (a kill between the
server's 250 and the commit marking the row sent) cannot be closed by any SMTP client; see
reviews/notifications.py.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from email import message_from_bytes
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.contrib.auth.models import User

from dossiers.models import Candidate
from reviews import services
from reviews.models import Notification
from reviews.tasks import notification_deliver_task, notifications_sweep_task
from tests.celery_worker import WorkerProcess
from tests.reviews.conftest import Personas

pytestmark = [pytest.mark.postgres, pytest.mark.services]

State = Notification.State
BATCH_USERS, BATCH_EVENTS = 20, 10  # 200 emails
HOLD_AFTER = 60
CONCURRENCY = 2  # the celery_worker fixture's pool size
LEASE_S = 7  # above 6 × EMAIL_TIMEOUT (1 s here), as settings require


class CountingSmtpHandler:
    """Records each accepted message's Message-ID; can hold RCPT to stand for a stalled server."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.message_ids: list[str] = []
        self.holding = 0
        self.release = threading.Event()

    def accepted(self) -> list[str]:
        with self.lock:
            return list(self.message_ids)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        await asyncio.sleep(0.005)  # a slow server: each send takes a while
        with self.lock:
            hold = len(self.message_ids) >= HOLD_AFTER and not self.release.is_set()
            self.holding += hold
        try:
            while hold and not self.release.is_set():
                await asyncio.sleep(0.01)  # cancelled when the client's connection drops
        finally:
            with self.lock:
                self.holding -= hold
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        # Like a real MTA: the message is taken at the end of DATA, before the 250 goes back.
        message = message_from_bytes(envelope.content)
        with self.lock:
            self.message_ids.append(str(message["Message-ID"]))
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[tuple[CountingSmtpHandler, int]]:
    handler = CountingSmtpHandler()
    port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        handler.release.set()
        controller.stop()


@pytest.fixture
def worker(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, smtp_server: tuple[CountingSmtpHandler, int]
) -> WorkerProcess:
    """The shared `celery_worker`, sending by SMTP to the test's server, with a short sending lease."""
    monkeypatch.setenv("EMAIL_HOST", "127.0.0.1")
    monkeypatch.setenv("EMAIL_PORT", str(smtp_server[1]))
    monkeypatch.setenv("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
    monkeypatch.setenv("EMAIL_TIMEOUT", "1")
    monkeypatch.setenv("NOTIFICATION_SENDING_LEASE", str(LEASE_S))
    return request.getfixturevalue("celery_worker")


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"not in {timeout}s: {what}")


def _outbox_of_200(people: Personas, candidate: Candidate) -> list[int]:
    users = User.objects.bulk_create(
        User(username=f"batch{i}", email=f"batch{i}@example.org") for i in range(BATCH_USERS)
    )
    people.market.members.add(*users)
    for n in range(BATCH_EVENTS):
        event = services._audit(by=people.curator, candidate=candidate, action=f"candidate.note{n}")
        services._notify(event, users, Notification.Reason.STATUS_CHANGE)
    return list(Notification.objects.order_by("pk").values_list("pk", flat=True))


def _states() -> Counter[str]:
    return Counter(Notification.objects.values_list("state", flat=True))


def test_a_killed_worker_sends_every_email_exactly_once(
    transactional_db: None,
    people: Personas,
    candidate: Candidate,
    smtp_server: tuple[CountingSmtpHandler, int],
    worker: WorkerProcess,
) -> None:
    handler, _ = smtp_server
    ids = _outbox_of_200(people, candidate)
    assert len(ids) == BATCH_USERS * BATCH_EVENTS
    for pk in ids:
        notification_deliver_task.delay(pk)

    # Mid-batch: both pool processes are held in an SMTP conversation. Kill the worker there.
    wait_until(lambda: handler.holding == CONCURRENCY, 120, "both worker processes held mid-send")
    worker.kill()
    before_kill = handler.accepted()
    states = _states()
    assert len(before_kill) >= HOLD_AFTER
    assert states[State.SENT] == len(before_kill)  # every accepted message was marked sent
    assert states[State.SENDING] == CONCURRENCY  # claimed, cut off mid-conversation
    assert states[State.PENDING] == len(ids) - len(before_kill) - CONCURRENCY > 0
    stuck = dict(Notification.objects.filter(state=State.SENDING).values_list("pk", "message_id"))
    print(f"killed with {len(before_kill)} accepted, {dict(states)}")  # shown with -s, and on failure

    # Restart; the server takes messages again; the beat sweep re-enqueues what the kill lost.
    handler.release.set()
    worker.start()

    deadline, next_sweep = time.monotonic() + 120, 0.0
    while _states()[State.SENT] < len(ids):
        assert time.monotonic() < deadline, f"not all sent after the restart: {_states()}"
        if time.monotonic() >= next_sweep:  # what the beat does every minute, here every lease
            notifications_sweep_task.delay()
            next_sweep = time.monotonic() + LEASE_S
        time.sleep(0.1)
    time.sleep(LEASE_S + 1)  # any late duplicate (a second sweep, a redelivered message) would show by now
    notifications_sweep_task.delay()
    time.sleep(1)

    accepted = Counter(handler.accepted())
    print(f"after restart: {len(accepted)} distinct Message-IDs, {sum(accepted.values())} messages")
    assert len(accepted) == len(ids)
    assert set(accepted.values()) == {1}, [mid for mid, n in accepted.items() if n > 1]
    rows = dict(Notification.objects.values_list("pk", "message_id"))
    assert set(rows.values()) == set(accepted)
    # The interrupted rows went out with the Message-ID they were claimed with, on their second attempt.
    for pk, message_id in stuck.items():
        assert rows[pk] == message_id
        assert Notification.objects.get(pk=pk).attempts == 2
