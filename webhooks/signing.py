"""The wire format of a delivery: body bytes, headers, and the HMAC-SHA256 signature receivers check."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from webhooks.models import Delivery


def delivery_body(delivery: Delivery) -> bytes:
    """The JSON body: the same bytes on every attempt and replay of a delivery."""
    envelope: dict[str, Any] = {
        "id": str(delivery.uuid),
        "event": delivery.event,
        "created_at": delivery.created_at.isoformat(),
        "data": delivery.payload,
    }
    return json.dumps(envelope, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256 over "<timestamp>.<body>" with the endpoint's secret."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def delivery_headers(delivery: Delivery, *, body: bytes, timestamp: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": "repurposing-portal-webhooks/1",
        "X-Portal-Event": delivery.event,
        "X-Portal-Delivery": str(delivery.uuid),
        "X-Portal-Timestamp": timestamp,
        "X-Portal-Signature": signature(delivery.endpoint.secret, timestamp, body),
    }
