"""The webhook outbox: deliveries are written in the event's transaction, a lost send is swept up, a stuck one replayed.

Exactly once per (endpoint, event, key) still holds: the sweep and a late original message never both send.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from dossiers.models import Candidate
from portal.celery import app
from portal.roles import Role
from reviews import services as reviews
from tests.factories import make_user
from tests.reviews.conftest import Personas
from tests.webhooks.conftest import Receiver, signature_valid
from webhooks.models import Delivery, Endpoint, Event
from webhooks.services import delivery_replay, delivery_send, delivery_sweep, webhook_event_publish

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _quick_retries(settings) -> None:
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    settings.WEBHOOK_BACKOFF_BASE = 0.01
    settings.WEBHOOK_TIMEOUT = 5


def _overdue(delivery_id: int, by: timedelta) -> None:
    Delivery.objects.filter(pk=delivery_id).update(next_attempt_at=timezone.now() - by)


def _publish(key: str = "k1") -> list[int]:
    return webhook_event_publish(event=Event.NEW_EVIDENCE, key=key, payload={"n": 1}, market_id=None)


def test_a_status_change_writes_its_deliveries_in_its_own_transaction(
    people: Personas, candidate: Candidate, django_capture_on_commit_callbacks
) -> None:
    Endpoint.objects.create(url="http://127.0.0.1:9/hook", events=[Event.STATUS_CHANGED])
    with django_capture_on_commit_callbacks() as callbacks:  # nothing runs after commit
        reviews.candidate_triage(candidate_id=candidate.pk, by=people.curator)
    [delivery] = Delivery.objects.all()
    assert delivery.status == Delivery.Status.PENDING and delivery.payload["to_status"] == "triaged"
    assert delivery.next_attempt_at is not None and delivery.next_attempt_at <= timezone.now()
    assert len(callbacks) == 1  # only the send is left for after commit


def test_a_send_lost_after_commit_is_swept_up_once(
    people: Personas, candidate: Candidate, receiver: Receiver, django_capture_on_commit_callbacks, monkeypatch
) -> None:
    hook = Endpoint.objects.create(url=receiver.url, events=[Event.STATUS_CHANGED])

    def broker_down(*args: object, **kwargs: object) -> None:
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr("webhooks.tasks.deliver.delay", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        reviews.candidate_triage(candidate_id=candidate.pk, by=people.curator)  # the workflow is not failed
    [delivery] = Delivery.objects.all()
    assert delivery.status == Delivery.Status.PENDING and receiver.requests == []
    monkeypatch.undo()

    assert delivery_sweep() == []  # not overdue yet: its first send may still be on its way
    _overdue(delivery.pk, timedelta(minutes=5))
    with django_capture_on_commit_callbacks(execute=True):
        assert delivery_sweep() == [delivery.pk]
    [got] = receiver.wait_for(1)
    assert signature_valid(hook.secret, got) and got.headers["X-Portal-Delivery"] == str(delivery.uuid)
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SUCCEEDED and delivery.next_attempt_at is None
    with django_capture_on_commit_callbacks(execute=True):
        assert delivery_sweep() == []
    assert len(receiver.requests) == 1


def test_the_sweep_takes_only_overdue_pending_deliveries(django_capture_on_commit_callbacks) -> None:
    Endpoint.objects.create(url="http://127.0.0.1:9/hook", events=[Event.NEW_EVIDENCE])
    with django_capture_on_commit_callbacks():
        lost, just_sent, retry_later, succeeded, failed = (_publish(key)[0] for key in "abcde")
    _overdue(lost, timedelta(minutes=3))
    Delivery.objects.filter(pk=retry_later).update(next_attempt_at=timezone.now() + timedelta(minutes=5))
    Delivery.objects.filter(pk=succeeded).update(status=Delivery.Status.SUCCEEDED, next_attempt_at=None)
    Delivery.objects.filter(pk=failed).update(status=Delivery.Status.FAILED, next_attempt_at=None)
    with django_capture_on_commit_callbacks() as callbacks:
        assert delivery_sweep() == [lost]
    assert len(callbacks) == 1
    swept = Delivery.objects.get(pk=lost)
    assert swept.next_attempt_at is not None and timezone.now() - swept.next_attempt_at < timedelta(seconds=5)
    with django_capture_on_commit_callbacks() as callbacks:
        assert delivery_sweep() == []  # sent again at most once per grace period
    assert Delivery.objects.get(pk=just_sent).next_attempt_at is not None


def test_the_sweep_and_a_late_original_message_send_once(
    receiver: Receiver, django_capture_on_commit_callbacks
) -> None:
    Endpoint.objects.create(url=receiver.url, events=[Event.NEW_EVIDENCE])
    with django_capture_on_commit_callbacks() as original:
        [delivery_id] = _publish()
    _overdue(delivery_id, timedelta(minutes=3))
    with django_capture_on_commit_callbacks() as swept:
        delivery_sweep()
    for callback in [*swept, *original]:  # both messages arrive
        callback()
    assert len(receiver.requests) == 1
    assert Delivery.objects.get(pk=delivery_id).attempt_log.count() == 1


def test_an_early_duplicate_message_waits_for_the_backoff(
    receiver: Receiver, settings, django_capture_on_commit_callbacks
) -> None:
    settings.WEBHOOK_BACKOFF_BASE = 120.0
    Endpoint.objects.create(url=receiver.url, events=[Event.NEW_EVIDENCE])
    receiver.script = [503]
    with django_capture_on_commit_callbacks():
        [delivery_id] = _publish()
    first = delivery_send(delivery_id=delivery_id)
    assert first.sent and first.retry_in is not None and first.retry_in >= 60
    delivery = Delivery.objects.get(pk=delivery_id)
    assert delivery.status == Delivery.Status.PENDING and delivery.next_attempt_at is not None
    assert delivery.next_attempt_at - timezone.now() > timedelta(seconds=55)
    again = delivery_send(delivery_id=delivery_id)  # a redelivered or swept copy, too early
    assert not again.sent and again.status == "not due" and again.retry_in is None
    assert len(receiver.requests) == 1
    assert delivery_sweep() == []  # a retry that is scheduled is not lost


def test_an_admin_replays_a_delivery_stuck_pending(
    receiver: Receiver, settings, django_capture_on_commit_callbacks
) -> None:
    admin = make_user("admin", Role.ADMIN)
    Endpoint.objects.create(url=receiver.url, events=[Event.NEW_EVIDENCE])
    with django_capture_on_commit_callbacks():
        [delivery_id] = _publish()
    _overdue(delivery_id, timedelta(minutes=5))
    with pytest.raises(ValidationError, match="still being tried"):
        delivery_replay(delivery_id=delivery_id, by=admin)  # not stuck long enough (15 minutes)
    _overdue(delivery_id, timedelta(minutes=16))
    with django_capture_on_commit_callbacks(execute=True):
        delivery_replay(delivery_id=delivery_id, by=admin)
    assert len(receiver.wait_for(1)) == 1
    delivery = Delivery.objects.get(pk=delivery_id)
    assert delivery.status == Delivery.Status.SUCCEEDED and delivery.replay_count == 1
    last = delivery.attempt_log.get()
    assert last.replay and last.requested_by == admin


def test_the_stuck_threshold_is_a_setting(settings, django_capture_on_commit_callbacks) -> None:
    settings.WEBHOOK_STUCK_AFTER = 60
    admin = make_user("admin", Role.ADMIN)
    Endpoint.objects.create(url="http://127.0.0.1:9/hook", events=[Event.NEW_EVIDENCE])
    with django_capture_on_commit_callbacks():
        [delivery_id] = _publish()
    _overdue(delivery_id, timedelta(minutes=2))
    with django_capture_on_commit_callbacks():
        assert delivery_replay(delivery_id=delivery_id, by=admin).replay_count == 1


def test_beat_runs_the_sweep_every_minute() -> None:
    entries = [e for e in django_settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "webhooks.deliveries_sweep"]
    assert len(entries) == 1
    schedule = entries[0]["schedule"]
    assert isinstance(schedule, float) and schedule <= 60
    app.loader.import_default_modules()
    assert "webhooks.deliveries_sweep" in app.tasks
