"""The acceptance test: a real Celery worker delivers a review event to a real receiver after a failure and a retry."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from dossiers.models import Candidate
from reviews import services as reviews
from tests.celery_worker import WorkerProcess
from tests.reviews.conftest import Personas
from tests.webhooks.conftest import Receiver, signature_valid
from webhooks.models import Delivery, Endpoint, Event
from webhooks.tasks import deliver, deliveries_sweep

pytestmark = [pytest.mark.postgres, pytest.mark.services]


@pytest.fixture
def worker(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> WorkerProcess:
    """The shared `celery_worker`, started with a short backoff so the retry comes within a second or two."""
    monkeypatch.setenv("WEBHOOK_BACKOFF_BASE", "0.5")
    monkeypatch.setenv("WEBHOOK_MAX_ATTEMPTS", "4")
    return request.getfixturevalue("celery_worker")


def wait_until(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_worker_delivers_once_after_failure_and_retry(
    transactional_db: None, people: Personas, candidate: Candidate, receiver: Receiver, worker: WorkerProcess
) -> None:
    hook = Endpoint.objects.create(url=receiver.url, events=[Event.STATUS_CHANGED, Event.SIGNED_OFF])
    receiver.script = [500]

    reviews.candidate_triage(candidate_id=candidate.pk, by=people.curator)  # commits: the worker takes over

    first, second = receiver.wait_for(2)
    wait_until(lambda: Delivery.objects.filter(status=Delivery.Status.SUCCEEDED).exists())
    assert (first.answered, second.answered) == (500, 200)
    assert second.at > first.at
    for got in (first, second):
        assert signature_valid(hook.secret, got)
        assert abs(int(got.headers["X-Portal-Timestamp"]) - time.time()) < 300
    assert first.headers["X-Portal-Delivery"] == second.headers["X-Portal-Delivery"]
    data = json.loads(second.body)["data"]
    assert (data["candidate"]["id"], data["from_status"], data["to_status"]) == (candidate.pk, "predicted", "triaged")
    delivery = Delivery.objects.get()
    assert delivery.attempts == 2
    assert list(delivery.attempt_log.values_list("response_code", flat=True)) == [500, 200]

    # The same task again (a redelivered message): the worker runs it and sends nothing.
    again = deliver.delay(delivery.pk)
    wait_until(lambda: f"[{again.id}] succeeded" in worker.log_path.read_text())
    assert len(receiver.requests) == 2
    assert Delivery.objects.get().attempt_log.count() == 2


def test_worker_sweep_sends_a_delivery_whose_message_was_lost(
    transactional_db: None,
    people: Personas,
    candidate: Candidate,
    receiver: Receiver,
    worker: WorkerProcess,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hook = Endpoint.objects.create(url=receiver.url, events=[Event.STATUS_CHANGED])
    monkeypatch.setattr("webhooks.services._enqueue", lambda ids: None)  # the web process dies before sending

    reviews.candidate_triage(candidate_id=candidate.pk, by=people.curator)  # the delivery row commits with it

    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.PENDING
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(minutes=5))
    deliveries_sweep.delay()  # what beat sends every minute
    [got] = receiver.wait_for(1)
    wait_until(lambda: Delivery.objects.filter(status=Delivery.Status.SUCCEEDED).exists())
    assert signature_valid(hook.secret, got) and got.headers["X-Portal-Delivery"] == str(delivery.uuid)
    assert json.loads(got.body)["data"]["to_status"] == "triaged"

    sweep = deliveries_sweep.delay()  # nothing is overdue now: nothing more is sent
    wait_until(lambda: f"[{sweep.id}] succeeded" in worker.log_path.read_text())
    assert len(receiver.requests) == 1
