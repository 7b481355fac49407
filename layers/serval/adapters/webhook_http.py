"""One webhook delivery attempt over HTTP(S), safe against SSRF.

The host is resolved at delivery time and every address it resolves to is checked
(``domain.webhooks.address_refusal``); the connection then goes to the checked address itself
(TLS still verifies the certificate for the host name), so a DNS answer that changes between
the check and the connection cannot slip through. Redirects are never followed: a 3xx is an
answer like any other (a failed attempt). The whole attempt has one deadline.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from serval.domain.webhooks import DELIVERY_TIMEOUT_S, address_refusal

BODY_EXCERPT_BYTES = 1024
USER_AGENT = "Serval-Webhooks/1"

Resolver = Callable[[str, int], list[str]]


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to for a TCP connection (deduplicated, in order)."""
    answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(a[4][0]) for a in answers))


@dataclass(frozen=True)
class Attempt:
    """What one attempt gave: the answer's status (None: no answer), how long it took, the
    first KiB of the answer's body, and why it failed without an answer (refused, network)."""

    status: int | None
    latency_ms: float
    body_excerpt: str = ""
    error: str | None = None
    refused: bool = False  # the destination was refused before any connection (SSRF rules)
    address: str | None = None  # the address connected to


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address
        self._tls = context

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)


def _within(timeout_s: float, resolver: Resolver, host: str, port: int) -> list[str]:
    """``resolver(host, port)`` in a thread of its own, given up on after ``timeout_s``: a name
    server that never answers (getaddrinfo has no timeout) costs the attempt, not the batch."""
    found: list[list[str]] = []
    failed: list[BaseException] = []

    def run() -> None:
        try:
            found.append(resolver(host, port))
        except BaseException as exc:  # re-raised in the caller's thread
            failed.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout_s)
    if failed:
        raise failed[0]
    if not found:
        raise TimeoutError(host)
    return found[0]


def deliver(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    allow_loopback: bool = False,
    timeout_s: float = DELIVERY_TIMEOUT_S,
    resolver: Resolver = resolve,
    tls: ssl.SSLContext | None = None,
) -> Attempt:
    """POST ``body`` to ``url`` once. Never raises for the consumer's behaviour: refusals,
    network errors and timeouts come back as an Attempt without a status."""
    started = time.monotonic()

    def took() -> float:
        return round((time.monotonic() - started) * 1000, 1)

    parts = urlsplit(url)
    host = parts.hostname or ""
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else 80)
    try:
        addresses = _within(timeout_s, resolver, host, port)
    except TimeoutError:
        return Attempt(None, took(), error=f"{host} was not resolved within {timeout_s:g} s")
    except (OSError, UnicodeError) as exc:
        return Attempt(None, took(), error=f"{host} could not be resolved ({exc})")
    if not addresses:
        return Attempt(None, took(), error=f"{host} resolved to no address")
    for address in addresses:
        refusal = address_refusal(address, allow_loopback=allow_loopback)
        if refusal:
            return Attempt(None, took(), error=f"refused: {host} resolves to {refusal}", refused=True)
    address = addresses[0]
    remaining = max(0.1, timeout_s - (time.monotonic() - started))
    connection: Any
    if secure:
        connection = _PinnedHTTPSConnection(
            host, port, address, remaining, tls or ssl.create_default_context()
        )
    else:
        connection = _PinnedHTTPConnection(host, port, address, remaining)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    # The socket's timeout bounds each read; the watchdog bounds the whole attempt (a consumer
    # that sends its answer a byte at a time would otherwise hold the attempt for minutes).
    expired = threading.Event()

    def cut_off() -> None:
        expired.set()
        sock = connection.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    watchdog = threading.Timer(remaining, cut_off)
    watchdog.daemon = True
    watchdog.start()
    try:
        connection.request("POST", path, body=body, headers={"user-agent": USER_AGENT, **headers})
        answer = connection.getresponse()
        excerpt = answer.read(BODY_EXCERPT_BYTES).decode("utf-8", errors="replace")
        if expired.is_set() or time.monotonic() - started > timeout_s:
            return Attempt(
                None, took(), excerpt, error=f"no full answer within {timeout_s:g} s", address=address
            )
        return Attempt(answer.status, took(), excerpt, address=address)
    except TimeoutError:
        return Attempt(None, took(), error=f"no answer within {timeout_s:g} s", address=address)
    except (OSError, http.client.HTTPException) as exc:
        if expired.is_set():
            return Attempt(None, took(), error=f"no answer within {timeout_s:g} s", address=address)
        return Attempt(None, took(), error=f"{type(exc).__name__}: {exc}", address=address)
    finally:
        watchdog.cancel()
        connection.close()
