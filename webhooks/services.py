"""Every write of the webhooks app: publish an event to the endpoints that want it, record attempts, sweep, replay.

`webhook_event_publish` is what other apps call, inside the transaction of the event it reports (reviews
for status changes and sign-offs, the evidence refresh for new evidence): the delivery rows are an outbox,
committed with the event or not at all. Rows are unique per (endpoint, event, key), so publishing the same
key twice sends nothing more. The HTTP work happens in `webhooks.tasks.deliver`, enqueued after commit;
each pending row carries `next_attempt_at`, and the beat sweep re-enqueues rows overdue by more than
WEBHOOK_SWEEP_GRACE seconds (a send lost to a crash or a broker outage, a retry message that vanished).
A task that arrives before its row is due sends nothing, so a swept copy and a late original cannot both
send; once a delivery succeeded it is never sent again except by an admin's replay.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests
from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from portal.roles import Role, has_role
from webhooks.models import Delivery, DeliveryAttempt, Endpoint, Event
from webhooks.signing import delivery_body, delivery_headers

logger = logging.getLogger(__name__)
EXCERPT_CHARS = 1000
# A task may run this much before its row's next_attempt_at (clocks of web and worker hosts, rounding).
EARLY_TOLERANCE = timedelta(seconds=1)
SWEEP_BATCH = 500


def sweep_grace() -> timedelta:
    """How long past due a pending delivery waits before the sweep sends it again (WEBHOOK_SWEEP_GRACE, s)."""
    return timedelta(seconds=settings.WEBHOOK_SWEEP_GRACE)


def stuck_after() -> timedelta:
    """How long past due a pending delivery must be before an admin may replay it (WEBHOOK_STUCK_AFTER, s)."""
    return timedelta(seconds=settings.WEBHOOK_STUCK_AFTER)


def _enqueue(delivery_ids: list[int]) -> None:
    from webhooks.tasks import deliver  # the task module imports this one

    for delivery_id in delivery_ids:
        # robust: the rows are committed; a broker refusing the message is the sweep's to repair, not the caller's
        transaction.on_commit(lambda pk=delivery_id: deliver.delay(pk), robust=True)  # type: ignore[misc]


@transaction.atomic
def webhook_event_publish(*, event: str, key: str, payload: dict[str, Any], market_id: int | None) -> list[int]:
    """Create one delivery per active endpoint that wants this event for this market; return the new ids.

    Idempotent on `key`: an endpoint that already has a delivery for (event, key) gets no second one.
    """
    if event not in Event.values:
        raise ValidationError({"event": f"{event!r} is not one of {', '.join(Event.values)}."})
    if not key:
        raise ValidationError({"key": "An idempotency key is required."})
    endpoints = [endpoint for endpoint in Endpoint.objects.filter(active=True) if endpoint.wants(event, market_id)]
    done = set(
        Delivery.objects.filter(endpoint__in=endpoints, event=event, key=key).values_list("endpoint_id", flat=True)
    )
    wanted = [endpoint for endpoint in endpoints if endpoint.pk not in done]
    if not wanted:
        return []
    now = timezone.now()
    rows = [
        Delivery(endpoint=endpoint, event=event, key=key, payload=payload, next_attempt_at=now) for endpoint in wanted
    ]
    # A concurrent publish of the same key may win the race: the unique constraint keeps one row.
    Delivery.objects.bulk_create(rows, ignore_conflicts=True)
    created = list(
        Delivery.objects.filter(endpoint__in=wanted, event=event, key=key, attempts=0, replay_count=0).values_list(
            "pk", flat=True
        )
    )
    _enqueue(created)
    return created


def audit_event_publish(*, event_id: int) -> list[int]:
    """Publish the webhooks a review audit row stands for: a status change, and a sign-off.

    Called by reviews in the audit row's transaction, so the deliveries commit with it (the outbox).
    The payload never carries review votes (blindness).
    """
    from reviews.models import AuditEvent, SignOff  # reviews imports this module

    audit = (
        AuditEvent.objects.select_related("actor", "candidate__dossier__drug", "candidate__dossier__market")
        .filter(pk=event_id)
        .first()
    )
    if audit is None or audit.candidate is None or audit.from_state == audit.to_state:
        return []
    candidate = audit.candidate
    market = candidate.dossier.market
    payload: dict[str, Any] = {
        "candidate": {
            "id": candidate.pk,
            "drug": candidate.dossier.drug.name,
            "disease": candidate.disease,
            "market": market.code,
        },
        "from_status": audit.from_state,
        "to_status": audit.to_state,
        "action": audit.action,
        "actor": audit.actor.get_username() if audit.actor else None,
        "at": audit.at.isoformat(),
        "links": {
            "api": settings.SITE_URL + reverse("api:candidate-detail", args=[candidate.pk]),
            "page": settings.SITE_URL + reverse("dossiers:candidate_detail", args=[candidate.pk]),
        },
    }
    key = f"audit:{audit.pk}"
    created = webhook_event_publish(event=Event.STATUS_CHANGED, key=key, payload=payload, market_id=market.pk)
    if audit.action == "candidate.sign_off" and audit.object_type == "reviews.signoff":
        signoff = SignOff.objects.filter(pk=audit.object_id).first()
        if signoff is not None:
            signed = {
                **payload,
                "decision": signoff.decision,
                "meaning": signoff.meaning,
                "signer": signoff.signer_name,
            }
            created += webhook_event_publish(event=Event.SIGNED_OFF, key=key, payload=signed, market_id=market.pk)
    return created


@transaction.atomic
def delivery_attempt_record(
    *,
    delivery_id: int,
    response_code: int | None,
    response_text: str,
    error: str,
    duration_ms: int,
    succeeded: bool,
    final: bool,
    retry_in: float | None = None,
) -> Delivery:
    """Log one HTTP attempt and move the delivery to succeeded, to failed when no retry is left, or schedule
    its next attempt `retry_in` seconds from now."""
    delivery = Delivery.objects.select_for_update().get(pk=delivery_id)
    number = delivery.attempt_log.count() + 1
    DeliveryAttempt.objects.create(
        delivery=delivery,
        number=number,
        replay=delivery.replay_count > 0,
        requested_by_id=delivery.replayed_by_id,
        response_code=response_code,
        response_excerpt=response_text[:EXCERPT_CHARS],
        error=error[:EXCERPT_CHARS],
        duration_ms=duration_ms,
        succeeded=succeeded,
    )
    now = timezone.now()
    delivery.attempts += 1
    delivery.last_attempt_at = now
    delivery.last_response_code = response_code
    delivery.last_response_excerpt = response_text[:EXCERPT_CHARS]
    delivery.last_error = error[:EXCERPT_CHARS]
    if succeeded:
        delivery.status, delivery.delivered_at = Delivery.Status.SUCCEEDED, now
    elif final:
        delivery.status = Delivery.Status.FAILED
    pending = delivery.status == Delivery.Status.PENDING
    delivery.next_attempt_at = now + timedelta(seconds=retry_in or 0) if pending else None
    delivery.save()
    return delivery


def is_stuck(delivery: Delivery, now: datetime | None = None) -> bool:
    """A pending delivery whose next attempt is overdue by more than WEBHOOK_STUCK_AFTER (the sweep did not help)."""
    if delivery.status != Delivery.Status.PENDING:
        return False
    due = delivery.next_attempt_at
    return due is None or due < (now or timezone.now()) - stuck_after()


@transaction.atomic
def delivery_replay(*, delivery_id: int, by: User) -> Delivery:
    """Send a delivery again with the same payload and delivery id, so the receiver can dedupe.

    A succeeded or failed delivery, or a pending one that is stuck; one still being tried is left to its retries.
    """
    if not has_role(by, Role.ADMIN):
        raise PermissionDenied("Only admins can replay webhook deliveries.")
    delivery = Delivery.objects.select_for_update().select_related("endpoint").get(pk=delivery_id)
    now = timezone.now()
    if delivery.status == Delivery.Status.PENDING and not is_stuck(delivery, now):
        minutes = int(stuck_after().total_seconds() // 60)
        raise ValidationError(
            f"Delivery {delivery.uuid} is still being tried; replay it once it succeeded or failed, or once its "
            f"next attempt is more than {minutes} minutes overdue."
        )
    if not delivery.endpoint.active:
        raise ValidationError(f"Endpoint {delivery.endpoint} is inactive; activate it before replaying.")
    delivery.status = Delivery.Status.PENDING
    delivery.attempts = 0
    delivery.replay_count += 1
    delivery.replayed_by, delivery.replayed_at = by, now
    delivery.next_attempt_at = now
    fields = ["status", "attempts", "replay_count", "replayed_by", "replayed_at", "next_attempt_at"]
    delivery.save(update_fields=fields)
    logger.info("webhook delivery %s replayed by %s", delivery.uuid, by.get_username())
    _enqueue([delivery.pk])
    return delivery


@transaction.atomic
def delivery_sweep() -> list[int]:
    """Re-enqueue pending deliveries overdue by more than the grace period; return their ids.

    Rows a task holds right now (a send in flight) are skipped. Each swept row becomes due now, so it is
    swept again only a grace period later, and a late original message finds it already sent.
    """
    now = timezone.now()
    overdue = Q(next_attempt_at__lt=now - sweep_grace()) | Q(next_attempt_at__isnull=True)
    ids = list(
        Delivery.objects.select_for_update(skip_locked=True)
        .filter(overdue, status=Delivery.Status.PENDING)
        .order_by("next_attempt_at", "id")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    if ids:
        Delivery.objects.filter(pk__in=ids).update(next_attempt_at=now)
        logger.warning("webhook sweep: %d overdue deliveries sent again: %s", len(ids), ids[:20])
        _enqueue(ids)
    return ids


@dataclass(frozen=True)
class SendOutcome:
    """What one run of `delivery_send` did; `retry_in` is set when the task should try again later."""

    sent: bool
    status: str
    retry_in: float | None = None


def _retryable(code: int | None) -> bool:
    return code is None or code >= 500 or code in (408, 429)


def backoff_seconds(attempt: int, retry_after: str | None = None) -> float:
    """Exponential backoff with equal jitter after the given attempt; a receiver's Retry-After wins if longer."""
    ceiling = min(settings.WEBHOOK_BACKOFF_MAX, settings.WEBHOOK_BACKOFF_BASE * 2 ** (attempt - 1))
    delay = ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311  (jitter, not security)
    if retry_after and retry_after.strip().isdigit():
        delay = max(delay, min(float(retry_after), settings.WEBHOOK_BACKOFF_MAX))
    return delay


@transaction.atomic
def delivery_send(*, delivery_id: int, on_schedule: bool = True) -> SendOutcome:
    """POST a pending delivery once and log the attempt; a delivery that is not pending is never sent.

    The row stays locked while the request runs, so two copies of the task cannot both send it; a copy that
    runs before the row's next attempt is due sends nothing (another message, or the sweep, is coming).
    `on_schedule=False` skips that check: inline (no broker) the caller itself waits between attempts.
    """
    delivery = (
        Delivery.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("endpoint")
        .filter(pk=delivery_id)
        .first()
    )
    if delivery is None:
        return SendOutcome(sent=False, status="locked or missing")
    if delivery.status != Delivery.Status.PENDING:
        return SendOutcome(sent=False, status=delivery.status)
    due = delivery.next_attempt_at
    if on_schedule and due is not None and due > timezone.now() + EARLY_TOLERANCE:
        return SendOutcome(sent=False, status="not due")
    if not delivery.endpoint.active:
        # Deactivating an endpoint stops what is still queued for it; a replay can send it later.
        delivery.status, delivery.last_error = Delivery.Status.FAILED, "The endpoint was deactivated."
        delivery.next_attempt_at = None
        delivery.save(update_fields=["status", "last_error", "next_attempt_at"])
        return SendOutcome(sent=False, status=delivery.status)
    body = delivery_body(delivery)
    headers = delivery_headers(delivery, body=body, timestamp=str(int(time.time())))
    code, text, error, retry_after = None, "", "", None
    started = time.monotonic()
    try:
        response = requests.post(
            delivery.endpoint.url, data=body, headers=headers, timeout=settings.WEBHOOK_TIMEOUT, allow_redirects=False
        )
        code, text, retry_after = response.status_code, response.text, response.headers.get("Retry-After")
    except requests.RequestException as exc:
        error = f"{type(exc).__name__}: {exc}"
    succeeded = code is not None and 200 <= code < 300
    final = succeeded or not _retryable(code) or delivery.attempts + 1 >= settings.WEBHOOK_MAX_ATTEMPTS
    retry_in = None if final else backoff_seconds(delivery.attempts + 1, retry_after)
    delivery = delivery_attempt_record(
        delivery_id=delivery.pk,
        response_code=code,
        response_text=text,
        error=error,
        duration_ms=int((time.monotonic() - started) * 1000),
        succeeded=succeeded,
        final=final,
        retry_in=retry_in,
    )
    return SendOutcome(sent=True, status=delivery.status, retry_in=retry_in)
