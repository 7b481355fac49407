"""A webhook receiver for the local stack: verifies every delivery with the ``standardwebhooks``
package (never with Serval's own code) and prints each event.

    python -m infra.local.receiver --port 9000 --secret whsec_...

Subscribe it with ``http://127.0.0.1:9000/`` (README, "Webhooks"). Tests use :class:`Receiver`
in-process, with behaviours a consumer may have: failing its first attempts, answering a fixed
status, hanging, redirecting.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass(frozen=True)
class Received:
    """One delivery that verified: its headers' id and timestamp, the event, which secret."""

    webhook_id: str
    timestamp: int
    event: dict[str, Any]
    secret_index: int  # the index in the receiver's secrets of the first one that verified it
    at: float  # when it arrived (epoch seconds)


@dataclass
class Behaviour:
    """How the receiver answers: ``fail_first`` requests get 500, then ``status``; ``hang_s``
    delays each answer; ``redirect_to`` answers 307 to that URL instead."""

    fail_first: int = 0
    status: int = 200
    hang_s: float = 0.0
    redirect_to: str | None = None


@dataclass
class Receiver:
    secrets: list[str]
    port: int = 0
    behaviour: Behaviour = field(default_factory=Behaviour)
    on_event: Callable[[Received], None] | None = None
    received: list[Received] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # why deliveries failed verification
    requests: int = 0
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self._server is not None, "start the receiver first"
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks"

    def verify(self, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]] | None:
        """The index of the first secret that verifies the delivery, and its event; None if none."""
        for index, secret in enumerate(self.secrets):
            try:
                event = Webhook(secret).verify(body, headers)
            except WebhookVerificationError:
                continue
            return index, event
        return None

    def ids(self) -> list[str]:
        with self._lock:
            return [r.webhook_id for r in self.received]

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet: the receiver prints events
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.requests += 1
                    number = receiver.requests
                behaviour = receiver.behaviour
                if behaviour.hang_s:
                    time.sleep(behaviour.hang_s)
                if behaviour.redirect_to:
                    self.send_response(307)
                    self.send_header("location", behaviour.redirect_to)
                    self.end_headers()
                    return
                if number <= behaviour.fail_first:
                    self._answer(500, b"down for maintenance")
                    return
                verified = receiver.verify(body, {k.lower(): v for k, v in self.headers.items()})
                if verified is None:
                    with receiver._lock:
                        receiver.rejected.append(self.headers.get("webhook-id") or "?")
                    self._answer(401, b"bad signature")
                    return
                index, event = verified
                got = Received(
                    self.headers["webhook-id"],
                    int(self.headers["webhook-timestamp"]),
                    event,
                    index,
                    time.time(),
                )
                with receiver._lock:
                    receiver.received.append(got)
                if receiver.on_event:
                    receiver.on_event(got)
                self._answer(behaviour.status, b"ok")

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("content-type", "text/plain")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        class Server(ThreadingHTTPServer):
            request_queue_size = 256  # a dispatcher sends a batch's deliveries at once (the default is 5)

        self._server = Server(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def wait_for(self, count: int, timeout_s: float = 30.0) -> list[Received]:
        """The deliveries received once there are ``count`` (AssertionError after the timeout)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.05)
        with self._lock:
            raise AssertionError(f"{len(self.received)} of {count} deliveries arrived in {timeout_s:g} s")


def _print(got: Received) -> None:
    event = got.event
    data = json.dumps(event.get("data"), ensure_ascii=False, separators=(",", ":"))
    print(
        f"{time.strftime('%H:%M:%S')}  {event.get('type', '?'):<22} {got.webhook_id}  "
        f"project={event.get('project_id')}  {data}",
        flush=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument(
        "--secret",
        action="append",
        required=True,
        help="The subscription's whsec_ secret (repeat it to accept both secrets of a rotation).",
    )
    args = parser.parse_args(argv)
    receiver = Receiver(secrets=args.secret, port=args.port, on_event=_print).start()
    print(f"Receiving webhooks on {receiver.url} (also any other path); Ctrl-C stops.", flush=True)
    try:
        while True:
            time.sleep(1)
            if receiver.rejected:
                for webhook_id in receiver.rejected:
                    print(
                        f"REJECTED {webhook_id}: no secret verifies its signature",
                        file=sys.stderr,
                        flush=True,
                    )
                receiver.rejected.clear()
    except KeyboardInterrupt:
        receiver.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
