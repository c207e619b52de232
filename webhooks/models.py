"""Outgoing webhooks: endpoints that subscribe to events, and the log of deliveries to them."""

from __future__ import annotations

import secrets
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from dossiers.models import Market


class Event(models.TextChoices):
    STATUS_CHANGED = "status_changed", "Candidate status changed"
    SIGNED_OFF = "signed_off", "Candidate signed off"
    NEW_EVIDENCE = "new_evidence", "New evidence found"


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def _validate_events(value: object) -> None:
    if not isinstance(value, list) or not value:
        raise ValidationError("Choose at least one event.")
    unknown = [item for item in value if item not in Event.values]
    if unknown:
        raise ValidationError(f"Unknown event(s): {', '.join(map(str, unknown))}; use {', '.join(Event.values)}.")


class Endpoint(models.Model):
    """A URL an admin registered to receive some events, optionally only for one market."""

    url = models.URLField(max_length=500)
    secret = models.CharField(
        max_length=200, default=new_secret, help_text="Signs every delivery (HMAC-SHA256); share it with the receiver."
    )
    events = models.JSONField(
        default=list, validators=[_validate_events], help_text=f"Any of: {', '.join(Event.values)}."
    )
    market = models.ForeignKey(
        Market, on_delete=models.CASCADE, null=True, blank=True, related_name="+", help_text="Empty: every market."
    )
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["url", "id"]

    def __str__(self) -> str:
        return self.url

    def wants(self, event: str, market_id: int | None) -> bool:
        """True when this endpoint is active, subscribes to the event, and its market filter lets it through."""
        return self.active and event in self.events and (self.market_id is None or self.market_id == market_id)


class Delivery(models.Model):
    """One event for one endpoint: the payload sent (the same bytes on every attempt) and where it stands.

    Written in the transaction of the event it reports (an outbox row), so a crash after commit loses nothing.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False, help_text="Sent as X-Portal-Delivery.")
    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=20, choices=Event.choices)
    key = models.CharField(max_length=200, help_text='What happened, e.g. "audit:123": one delivery per key.')
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0, help_text="Attempts since it was created or last replayed.")
    last_response_code = models.PositiveIntegerField(null=True, blank=True)
    last_response_excerpt = models.TextField(blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="While pending: when the next attempt is due; the beat sweep re-sends overdue ones.",
    )
    delivered_at = models.DateTimeField(null=True, blank=True)
    replay_count = models.PositiveIntegerField(default=0)
    replayed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    replayed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event", "key"], name="webhook_delivery_once_per_key"),
        ]
        indexes = [
            models.Index(fields=["next_attempt_at"], name="webhook_delivery_due", condition=models.Q(status="pending")),
        ]

    def __str__(self) -> str:
        return f"{self.event} {self.key} → {self.endpoint} ({self.status})"


class DeliveryAttempt(models.Model):
    """One HTTP attempt of a delivery: when, what came back, and whether it was a replay."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField(help_text="1, 2, … across the delivery's whole life, replays included.")
    replay = models.BooleanField(default=False)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    at = models.DateTimeField(auto_now_add=True)
    response_code = models.PositiveIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    succeeded = models.BooleanField(default=False)

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="webhook_attempt_number_unique"),
        ]

    def __str__(self) -> str:
        return f"attempt {self.number}: {self.response_code or self.error}"
