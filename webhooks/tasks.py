"""Celery tasks of the webhooks app: load by id, call the service, own the retries."""

from __future__ import annotations

import logging
import time

from celery import Task, shared_task

from webhooks.services import delivery_send, delivery_sweep

logger = logging.getLogger(__name__)
EAGER_MAX_SLEEP = 1.0


@shared_task(bind=True, max_retries=None, acks_late=True)
def deliver(self: Task, delivery_id: int) -> str:
    """Send one webhook delivery; retry later (backoff with jitter) while the service asks for it."""
    outcome = delivery_send(delivery_id=delivery_id)
    while outcome.retry_in is not None and self.request.is_eager:
        # Inline (no broker: development and tests) Celery cannot schedule a retry, so wait here,
        # briefly, since the caller is a request; attempts are still bounded by WEBHOOK_MAX_ATTEMPTS.
        time.sleep(min(outcome.retry_in, EAGER_MAX_SLEEP))
        outcome = delivery_send(delivery_id=delivery_id, on_schedule=False)
    if outcome.retry_in is not None:
        logger.info("webhook delivery %s: retry in %.1fs", delivery_id, outcome.retry_in)
        # The attempt count lives on the row (WEBHOOK_MAX_ATTEMPTS), not in Celery's retry counter.
        raise self.retry(countdown=outcome.retry_in)
    return outcome.status


@shared_task(name="webhooks.deliveries_sweep")
def deliveries_sweep() -> int:
    """Beat, every minute: send again the pending deliveries whose next attempt is overdue (lost messages)."""
    return len(delivery_sweep())
