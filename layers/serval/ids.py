"""Identifiers: time-ordered random ids, and stable ids derived from an identity."""

from __future__ import annotations

import hashlib
import os
import time

ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case (ascending)
STABLE_BITS = 128  # a stable id's value: the first 16 bytes of a SHA-256 digest ...
STABLE_CHARS = 26  # ... written with this many base32 characters (so it starts with 0-7)


def b32(value: int, length: int) -> str:
    """``value`` in ``length`` base32 digits, most significant first (so strings sort as numbers)."""
    chars = []
    for _ in range(length):
        chars.append(ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    """A ULID-style id: 48 bits of milliseconds then 80 random bits, so ids sort by creation."""
    millis = int(time.time() * 1000)
    return f"{prefix}_{b32(millis, 10)}{b32(int.from_bytes(os.urandom(10), 'big'), 16)}"


def stable_id(prefix: str, *parts: object) -> str:
    """The same parts always give the same id: used to make ingestion idempotent."""
    # length-prefixed parts: ("a,b",) and ("a", "b") can never collide
    encoded = "".join(f"{len(str(p))}:{p}," for p in parts)
    digest = hashlib.sha256(encoded.encode()).digest()
    return f"{prefix}_{b32(int.from_bytes(digest[: STABLE_BITS // 8], 'big'), STABLE_CHARS)}"


def task_id(project_id: str, external_id: str | None, position: tuple[object, ...]) -> str:
    """A task's id: its external id names it across imports; otherwise its position in its source does."""
    if external_id:
        return stable_id("t", project_id, "external", external_id)
    return stable_id("t", *position)


def fingerprint(request: object) -> str:
    """A digest of a request (a model, or a list of models) as pydantic serializes it.

    An Idempotency-Key sent again must come with the same request: a different fingerprint
    is a 409, never a replay of the first request's answer.
    """
    from pydantic_core import to_json

    return hashlib.sha256(to_json(request)).hexdigest()
