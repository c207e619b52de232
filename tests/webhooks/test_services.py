"""Webhook publishing, signing, retries, idempotency and replay, against a real HTTP receiver (tasks inline)."""

from __future__ import annotations

import json
import socket
import time

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from dossiers.models import Candidate
from portal.roles import Role
from reviews import services as reviews
from tests.factories import make_market, make_user
from tests.reviews.conftest import Personas, to_signed_off
from tests.webhooks.conftest import Receiver, signature_valid
from webhooks.models import Delivery, Endpoint, Event
from webhooks.services import backoff_seconds, delivery_replay, webhook_event_publish
from webhooks.tasks import deliver

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _quick_retries(settings) -> None:
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    settings.WEBHOOK_BACKOFF_BASE = 0.01
    settings.WEBHOOK_TIMEOUT = 5


def endpoint(url: str, *events: str, **kwargs) -> Endpoint:
    return Endpoint.objects.create(url=url, events=list(events or Event.values), **kwargs)


def publish(key: str = "k1", market_id: int | None = None, event: str = Event.NEW_EVIDENCE) -> list[int]:
    return webhook_event_publish(event=event, key=key, payload={"hello": "world"}, market_id=market_id)


def test_publish_matches_event_market_and_active(django_capture_on_commit_callbacks) -> None:
    india, canada = make_market("IN"), make_market("CA", "Canada")
    everything = endpoint("http://127.0.0.1:9/a")
    india_only = endpoint("http://127.0.0.1:9/b", Event.NEW_EVIDENCE, market=india)
    endpoint("http://127.0.0.1:9/c", Event.NEW_EVIDENCE, market=canada)
    endpoint("http://127.0.0.1:9/d", Event.SIGNED_OFF)
    endpoint("http://127.0.0.1:9/e", Event.NEW_EVIDENCE, active=False)
    with django_capture_on_commit_callbacks() as callbacks:
        created = publish(market_id=india.pk)
    assert sorted(Delivery.objects.filter(pk__in=created).values_list("endpoint_id", flat=True)) == sorted(
        [everything.pk, india_only.pk]
    )
    assert len(callbacks) == 2  # one delivery task each, after commit


def test_publish_is_idempotent_on_key(django_capture_on_commit_callbacks) -> None:
    endpoint("http://127.0.0.1:9/a")
    with django_capture_on_commit_callbacks():
        first = publish(key="audit:1")
        again = publish(key="audit:1")
        other = publish(key="audit:2")
    assert len(first) == 1 and again == [] and len(other) == 1
    assert Delivery.objects.count() == 2


def test_publish_refuses_unknown_event() -> None:
    with pytest.raises(ValidationError, match="not one of"):
        webhook_event_publish(event="deleted", key="x", payload={}, market_id=None)
    assert not Delivery.objects.exists()


def test_failure_then_retry_delivers_once_with_valid_signature(receiver: Receiver, django_capture_on_commit_callbacks):
    hook = endpoint(receiver.url, Event.NEW_EVIDENCE)
    receiver.script = [500]
    with django_capture_on_commit_callbacks(execute=True):
        [delivery_id] = publish()
    first, second = receiver.wait_for(2)
    assert (first.answered, second.answered) == (500, 200)
    for got in (first, second):
        assert signature_valid(hook.secret, got)
        assert abs(int(got.headers["X-Portal-Timestamp"]) - time.time()) < 300
        assert got.headers["X-Portal-Event"] == "new_evidence"
    delivery = Delivery.objects.get(pk=delivery_id)
    assert first.headers["X-Portal-Delivery"] == second.headers["X-Portal-Delivery"] == str(delivery.uuid)
    assert first.body == second.body
    assert json.loads(second.body)["data"] == {"hello": "world"}
    assert delivery.status == Delivery.Status.SUCCEEDED and delivery.attempts == 2
    log = list(delivery.attempt_log.values_list("number", "response_code", "succeeded"))
    assert log == [(1, 500, False), (2, 200, True)]
    # A second run of the task (a redelivered message) sends nothing.
    deliver.apply(args=(delivery_id,))
    assert len(receiver.requests) == 2
    assert Delivery.objects.get(pk=delivery_id).attempt_log.count() == 2


def test_tampered_body_fails_verification(receiver: Receiver, django_capture_on_commit_callbacks) -> None:
    hook = endpoint(receiver.url)
    with django_capture_on_commit_callbacks(execute=True):
        publish()
    [got] = receiver.wait_for(1)
    got.body = got.body.replace(b"world", b"w0rld")
    assert not signature_valid(hook.secret, got)


def test_gives_up_after_max_attempts(receiver: Receiver, django_capture_on_commit_callbacks) -> None:
    endpoint(receiver.url)
    receiver.script = [503, 503, 503, 200]
    with django_capture_on_commit_callbacks(execute=True):
        [delivery_id] = publish()
    delivery = Delivery.objects.get(pk=delivery_id)
    assert len(receiver.requests) == 3
    assert delivery.status == Delivery.Status.FAILED and delivery.attempts == 3
    assert delivery.last_response_code == 503 and "receiver is down" in delivery.last_response_excerpt


def test_client_error_is_not_retried_but_429_is(receiver: Receiver, django_capture_on_commit_callbacks) -> None:
    endpoint(receiver.url)
    receiver.script = [400]
    with django_capture_on_commit_callbacks(execute=True):
        [refused] = publish(key="a")
    assert Delivery.objects.get(pk=refused).status == Delivery.Status.FAILED
    assert len(receiver.requests) == 1
    receiver.script = [429]
    with django_capture_on_commit_callbacks(execute=True):
        [throttled] = publish(key="b")
    assert Delivery.objects.get(pk=throttled).status == Delivery.Status.SUCCEEDED
    assert len(receiver.requests) == 3


def test_connection_error_is_retried_and_logged(django_capture_on_commit_callbacks) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint(f"http://127.0.0.1:{port}/hook")
    with django_capture_on_commit_callbacks(execute=True):
        [delivery_id] = publish()
    delivery = Delivery.objects.get(pk=delivery_id)
    assert delivery.status == Delivery.Status.FAILED and delivery.attempts == 3
    assert all("ConnectionError" in error for error in delivery.attempt_log.values_list("error", flat=True))


def test_replay_resends_same_body_and_delivery_id(receiver: Receiver, django_capture_on_commit_callbacks) -> None:
    admin = make_user("admin", Role.ADMIN)
    hook = endpoint(receiver.url)
    with django_capture_on_commit_callbacks(execute=True):
        [delivery_id] = publish()
    with django_capture_on_commit_callbacks(execute=True):
        delivery_replay(delivery_id=delivery_id, by=admin)
    original, replayed = receiver.wait_for(2)
    assert replayed.body == original.body
    assert replayed.headers["X-Portal-Delivery"] == original.headers["X-Portal-Delivery"]
    assert signature_valid(hook.secret, replayed)
    delivery = Delivery.objects.get(pk=delivery_id)
    assert delivery.status == Delivery.Status.SUCCEEDED and delivery.replay_count == 1
    last = delivery.attempt_log.last()
    assert last is not None and last.replay and last.requested_by == admin and last.number == 2


def test_a_delivery_still_being_tried_is_not_replayed(django_capture_on_commit_callbacks) -> None:
    admin = make_user("admin", Role.ADMIN)
    endpoint("http://127.0.0.1:9/a")
    with django_capture_on_commit_callbacks():
        [delivery_id] = publish()
    with pytest.raises(ValidationError, match="still being tried"):
        delivery_replay(delivery_id=delivery_id, by=admin)
    assert Delivery.objects.get(pk=delivery_id).replay_count == 0


def test_deactivated_endpoint_gets_nothing_more(receiver: Receiver, django_capture_on_commit_callbacks) -> None:
    hook = endpoint(receiver.url)
    with django_capture_on_commit_callbacks() as callbacks:
        [delivery_id] = publish()
    Endpoint.objects.filter(pk=hook.pk).update(active=False)
    for callback in callbacks:
        callback()
    delivery = Delivery.objects.get(pk=delivery_id)
    assert receiver.requests == [] and delivery.status == Delivery.Status.FAILED
    assert "deactivated" in delivery.last_error and delivery.attempts == 0


def test_only_admins_replay(receiver: Receiver, django_capture_on_commit_callbacks) -> None:
    curator = make_user("curator", Role.CURATOR)
    endpoint(receiver.url)
    with django_capture_on_commit_callbacks(execute=True):
        [delivery_id] = publish()
    with pytest.raises(PermissionDenied):
        delivery_replay(delivery_id=delivery_id, by=curator)
    assert Delivery.objects.get(pk=delivery_id).replay_count == 0
    assert len(receiver.requests) == 1


@pytest.mark.parametrize("attempt", [1, 2, 5, 30])
def test_backoff_is_exponential_with_jitter_and_capped(settings, attempt: int) -> None:
    settings.WEBHOOK_BACKOFF_BASE, settings.WEBHOOK_BACKOFF_MAX = 2.0, 60.0
    ceiling = min(60.0, 2.0 * 2 ** (attempt - 1))
    delays = {backoff_seconds(attempt) for _ in range(20)}
    assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
    assert len(delays) > 1  # jittered
    assert backoff_seconds(1, retry_after="30") >= 30


def test_status_change_and_signoff_events_from_reviews(
    receiver: Receiver, people: Personas, candidate: Candidate, django_capture_on_commit_callbacks
) -> None:
    status_hook = endpoint(receiver.url, Event.STATUS_CHANGED)
    endpoint(receiver.url + "?signed", Event.SIGNED_OFF)
    endpoint(receiver.url + "?canada", Event.STATUS_CHANGED, Event.SIGNED_OFF, market=make_market("CA", "Canada"))
    with django_capture_on_commit_callbacks(execute=True):
        to_signed_off(candidate, people)
    bodies = [json.loads(got.body) for got in receiver.requests]
    changes = [body["data"] for body in bodies if body["event"] == "status_changed"]
    assert [(c["from_status"], c["to_status"]) for c in changes] == [
        ("predicted", "triaged"),
        ("triaged", "in_curation"),
        ("in_curation", "in_review"),
        ("in_review", "decision_pending"),
        ("decision_pending", "signed_off"),
    ]
    first = changes[0]
    assert first["candidate"] == {
        "id": candidate.pk,
        "drug": candidate.dossier.drug.name,
        "disease": "Multiple myeloma",
        "market": "IN",
    }
    assert first["actor"] == "curator"
    assert first["links"]["api"].endswith(f"/api/v1/candidates/{candidate.pk}/")
    assert first["links"]["page"].endswith(f"/candidates/{candidate.pk}/")
    [signed] = [body["data"] for body in bodies if body["event"] == "signed_off"]
    assert signed["decision"] == "guardrails" and signed["meaning"].startswith("Approved")
    assert signed["actor"] == "approver" and signed["to_status"] == "signed_off"
    # Blindness: nothing of the reviewers' votes leaves the portal.
    for got in receiver.requests:
        assert b"reviewer1" not in got.body and b"reasons" not in got.body and b"recommendation" not in got.body
        assert "canada" not in got.headers.get("Host", "")
    assert all(signature_valid(status_hook.secret, got) for got in receiver.requests if b"status_changed" in got.body)
    assert Delivery.objects.filter(status=Delivery.Status.SUCCEEDED).count() == 6


def test_only_status_changes_publish(
    people: Personas, candidate: Candidate, django_capture_on_commit_callbacks, monkeypatch
) -> None:
    monkeypatch.setattr("webhooks.services._enqueue", lambda ids: None)  # rows only, no HTTP
    endpoint("http://127.0.0.1:9/a", Event.STATUS_CHANGED)
    with django_capture_on_commit_callbacks(execute=True):
        reviews.candidate_triage(candidate_id=candidate.pk, by=people.curator)
    assert Delivery.objects.count() == 1
    with django_capture_on_commit_callbacks(execute=True):
        reviews.comment_add(candidate_id=candidate.pk, by=people.curator, body="no status change")
    assert Delivery.objects.count() == 1


def test_readme_snippet_verifies_a_real_delivery(receiver: Receiver, django_capture_on_commit_callbacks) -> None:
    from django.conf import settings

    readme = (settings.BASE_DIR / "README.md").read_text()
    snippet = readme.split("## Webhooks", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(snippet, namespace)  # noqa: S102  (our own README)
    hook = endpoint(receiver.url)
    with django_capture_on_commit_callbacks(execute=True):
        publish()
    [got] = receiver.wait_for(1)
    assert namespace["verify"](hook.secret, got.headers, got.body)
    assert not namespace["verify"]("wrong secret", got.headers, got.body)
    assert not namespace["verify"](hook.secret, got.headers, got.body + b" ")
