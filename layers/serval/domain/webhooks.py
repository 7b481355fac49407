"""Webhook deliveries as the Standard Webhooks specification defines them, storage-free.

- Secrets are ``whsec_`` + base64 of random bytes; the HMAC key is the decoded bytes.
- A delivery carries ``webhook-id`` (the event's stable id: consumers deduplicate on it),
  ``webhook-timestamp`` (Unix seconds) and ``webhook-signature``: ``v1,`` + base64 of
  HMAC-SHA256 over ``{id}.{timestamp}.{body}``, one per secret in force, space-separated (a
  rotation signs with the old and the new secret during its overlap).
- Retries follow ``RETRY_SCHEDULE_S`` (more than a day in all), each delay with jitter.
- A destination is refused unless its address is public (SSRF): checked on the address the
  connection will use, after resolution, never on the name.

Used by the subscriptions API (secrets, URL checks) and the dispatcher (signing, outcomes,
retries, address checks); both sides of the wire are in ``tests/unit/test_webhooks.py``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import os
import random
from collections.abc import Callable, Sequence
from enum import StrEnum
from urllib.parse import urlsplit

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32  # the specification asks for 24 to 64
SIGNATURE_VERSION = "v1"

# Seconds to wait after each failed attempt before the next: attempt 1 fails → 5 s, … The last
# wait ends ~27.6 h after the first attempt; an eighth failure ends the retries (the DLQ).
RETRY_SCHEDULE_S: tuple[int, ...] = (5, 300, 1_800, 7_200, 18_000, 36_000, 36_000)
JITTER = 0.1  # each delay is drawn from ±10 % of its schedule value
DELIVERY_TIMEOUT_S = 10.0
# The dispatcher's Powertools counts that its failure-rate alarm (infra/spec.py) reads
METRIC_SUCCEEDED = "DeliveriesSucceeded"
METRIC_FAILED = "DeliveriesFailed"


def new_secret(random_bytes: Callable[[int], bytes] = os.urandom) -> str:
    """A fresh signing secret in the Standard Webhooks format."""
    return SECRET_PREFIX + base64.b64encode(random_bytes(SECRET_BYTES)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret; ValueError for anything else."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a webhook secret starts with whsec_")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except ValueError as exc:
        raise ValueError("a webhook secret is whsec_ followed by base64") from exc
    if not 24 <= len(key) <= 64:
        raise ValueError("a webhook secret holds 24 to 64 bytes")
    return key


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """One signature of a delivery: ``v1,`` + base64(HMAC-SHA256(key, id.timestamp.body))."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def delivery_headers(secrets: Sequence[str], message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers of a delivery signed with every secret in force (the current one first)."""
    if not secrets:
        raise ValueError("a delivery is signed with at least one secret")
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(s, message_id, timestamp, body) for s in secrets),
    }


class Outcome(StrEnum):
    DELIVERED = "delivered"  # a 2xx
    GONE = "gone"  # a 410: the consumer asks to stop; the subscription is disabled at once
    FAILED = "failed"  # anything else, a network error or the timeout: retried


def outcome_of(status: int | None) -> Outcome:
    """What an attempt's answer means (None: no answer — a network error or the timeout)."""
    if status is not None and 200 <= status < 300:
        return Outcome.DELIVERED
    if status == 410:
        return Outcome.GONE
    return Outcome.FAILED


def retry_delay(failed_attempt: int, rng: random.Random | None = None) -> float | None:
    """Seconds before the attempt after ``failed_attempt`` (1 = the first attempt), jittered;
    None when the schedule is spent and the delivery goes to the dead-letter queue."""
    if failed_attempt < 1:
        raise ValueError("attempts count from 1")
    if failed_attempt > len(RETRY_SCHEDULE_S):
        return None
    base = RETRY_SCHEDULE_S[failed_attempt - 1]
    spread = (rng or random).uniform(-JITTER, JITTER)
    return base * (1 + spread)


def address_refusal(address: str, allow_loopback: bool = False) -> str | None:
    """Why a delivery may not connect to ``address`` (an IP literal), or None when it may.

    Only globally routable unicast addresses are allowed: private, loopback, link-local
    (169.254.0.0/16, fe80::/10), unique-local (fc00::/7, so fd00::/8), shared (100.64.0.0/10),
    reserved, unspecified and multicast addresses are refused, IPv4-mapped IPv6 as its IPv4.
    ``allow_loopback`` is for the local environment, whose receivers listen on loopback.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return f"{address!r} is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return None if allow_loopback else f"{ip} is a loopback address"
    if ip.is_multicast:
        return f"{ip} is a multicast address"
    if ip.is_link_local:
        return f"{ip} is a link-local address"
    if not ip.is_global:
        return f"{ip} is not a public address (private, shared, reserved or unspecified)"
    return None


def url_refusal(url: str, local: bool = False) -> str | None:
    """Why ``url`` may not be a subscription's URL, or None. HTTPS only; in the local
    environment ``http://127.0.0.1`` too. No credentials in the URL, no fragment."""
    if len(url) > 2048:
        return "the URL is longer than 2,048 characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"the URL is malformed ({exc})"
    host = parts.hostname or ""
    if not host:
        return "the URL has no host"
    if parts.username is not None or parts.password is not None:
        return "the URL may not hold credentials; a delivery is signed instead"
    if parts.fragment:
        return "the URL may not have a fragment"
    if _is_ip(host):  # an address literal is checked now too (a name: at each delivery)
        refusal = address_refusal(host, allow_loopback=local)
        if refusal:
            return f"the URL's host is refused: {refusal}"
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and local and host == "127.0.0.1":
        return None if port is None or port > 0 else "the URL's port is invalid"
    return "the URL must use https" + (" (or http://127.0.0.1 in the local environment)" if local else "")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
