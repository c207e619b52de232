"""Webhook admin screens: admins manage endpoints and replay deliveries; the log is read-only; others get 403."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from portal.roles import Role
from tests.factories import make_market, make_user
from tests.webhooks.conftest import Receiver
from webhooks.models import Delivery, Endpoint, Event
from webhooks.services import webhook_event_publish

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def client_for(*roles: Role) -> Client:
    client = Client()
    client.force_login(make_user(None, *roles, is_staff=True))
    return client


def delivered(receiver: Receiver, django_capture_on_commit_callbacks) -> Delivery:
    Endpoint.objects.create(url=receiver.url, events=[Event.NEW_EVIDENCE])
    with django_capture_on_commit_callbacks(execute=True):
        [delivery_id] = webhook_event_publish(event=Event.NEW_EVIDENCE, key="k", payload={"n": 1}, market_id=None)
    return Delivery.objects.get(pk=delivery_id)


@pytest.mark.parametrize("role", [Role.CURATOR, Role.APPROVER, Role.REVIEWER, Role.VIEWER])
def test_other_staff_roles_cannot_see_webhook_screens(role: Role) -> None:
    client = client_for(role)
    for name in (
        "admin:webhooks_endpoint_changelist",
        "admin:webhooks_endpoint_add",
        "admin:webhooks_delivery_changelist",
    ):
        assert client.get(reverse(name)).status_code == 403
    assert b"webhooks" not in client.get(reverse("admin:index")).content.lower()


def test_admin_creates_an_endpoint_with_validated_events() -> None:
    client = client_for(Role.ADMIN)
    market = make_market("IN")
    url = reverse("admin:webhooks_endpoint_add")
    bad = client.post(url, {"url": "https://hooks.example.org/x", "secret": "s3", "events": ["deleted"]})
    assert bad.status_code == 200 and b"Select a valid choice" in bad.content
    assert not Endpoint.objects.exists()
    good = client.post(
        url,
        {
            "url": "https://hooks.example.org/x",
            "secret": "s3",
            "events": ["signed_off", "new_evidence"],
            "market": market.pk,
            "active": "on",
        },
    )
    assert good.status_code == 302
    endpoint = Endpoint.objects.get()
    assert endpoint.events == ["signed_off", "new_evidence"] and endpoint.market == market
    assert endpoint.created_by is not None and endpoint.created_by.username.startswith("user")


def test_delivery_log_is_read_only(receiver: Receiver, django_capture_on_commit_callbacks) -> None:
    delivery = delivered(receiver, django_capture_on_commit_callbacks)
    client = client_for(Role.ADMIN)
    page = client.get(reverse("admin:webhooks_delivery_change", args=[delivery.pk]))
    assert page.status_code == 200 and b"Save" not in page.content
    html = page.content.decode()
    assert str(delivery.uuid) in html and "receiver is down" not in html  # one attempt, answered 200
    assert "Delivery attempts" in html and html.count('<td class="field-response_code">') == 1
    assert (
        client.post(reverse("admin:webhooks_delivery_change", args=[delivery.pk]), {"status": "failed"}).status_code
        == 403
    )
    assert client.get(reverse("admin:webhooks_delivery_add")).status_code == 403
    assert (
        client.post(reverse("admin:webhooks_delivery_delete", args=[delivery.pk]), {"post": "yes"}).status_code == 403
    )
    assert Delivery.objects.get(pk=delivery.pk).status == Delivery.Status.SUCCEEDED


def test_replay_action_sends_again(receiver: Receiver, django_capture_on_commit_callbacks) -> None:
    delivery = delivered(receiver, django_capture_on_commit_callbacks)
    client = client_for(Role.ADMIN)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:webhooks_delivery_changelist"),
            {"action": "replay", "_selected_action": [delivery.pk]},
            follow=True,
        )
    assert b"queued for replay" in response.content
    first, second = receiver.wait_for(2)
    assert first.body == second.body
    assert Delivery.objects.get(pk=delivery.pk).replay_count == 1
