"""A webhook attempt against real loopback servers: the answer and its first KiB, redirects not
followed, a consumer that hangs past the timeout, refused destinations never connected to, and
the connection made to the checked address (TLS verified for the host name)."""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from serval.adapters.webhook_http import BODY_EXCERPT_BYTES, deliver
from tests.ports import free_port


class Consumer:
    """A loopback HTTP server that records what it receives and answers as told."""

    def __init__(
        self, status: int = 200, body: bytes = b"ok", delay_s: float = 0.0, location: str = ""
    ) -> None:
        self.received: list[dict[str, Any]] = []
        consumer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                consumer.received.append({"headers": dict(self.headers), "body": self.rfile.read(length)})
                time.sleep(delay_s)
                self.send_response(status)
                if location:
                    self.send_header("location", location)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook?x=1"

    def __enter__(self) -> Consumer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


HEADERS = {"webhook-id": "evt_1", "content-type": "application/json"}


def test_an_answer_is_recorded_with_the_first_kib_of_its_body() -> None:
    with Consumer(status=204, body=("é" * 3000).encode()) as consumer:
        attempt = deliver(consumer.url, b'{"a":1}', HEADERS, allow_loopback=True)
    assert attempt.status == 204 and attempt.error is None and attempt.address == "127.0.0.1"
    assert len(attempt.body_excerpt.encode()) <= BODY_EXCERPT_BYTES + 3  # a cut character is replaced
    (request,) = consumer.received
    assert request["body"] == b'{"a":1}' and request["headers"]["webhook-id"] == "evt_1"
    assert attempt.latency_ms >= 0


def test_a_redirect_is_an_answer_never_followed() -> None:
    with Consumer() as target, Consumer(status=302, location="http://127.0.0.1:1/x") as redirecting:
        redirecting_url = redirecting.url.replace("/hook", "/r")
        attempt = deliver(redirecting_url, b"{}", HEADERS, allow_loopback=True)
        assert attempt.status == 302
        assert target.received == []


def test_a_consumer_that_hangs_past_the_timeout_fails_the_attempt() -> None:
    with Consumer(delay_s=2.0) as consumer:
        attempt = deliver(consumer.url, b"{}", HEADERS, allow_loopback=True, timeout_s=0.5)
    assert attempt.status is None and attempt.error and "0.5 s" in attempt.error


def test_a_consumer_that_drips_its_answer_is_cut_off_at_the_deadline() -> None:
    """Each byte within the socket's timeout, the whole far beyond it: the attempt still ends
    at its one deadline (a hostile consumer must not hold a dispatcher thread for minutes)."""
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def drip() -> None:
        connection, _ = listener.accept()
        connection.recv(65536)
        with contextlib.suppress(OSError):
            for byte in b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok":
                connection.sendall(bytes([byte]))
                time.sleep(0.2)
        connection.close()

    threading.Thread(target=drip, daemon=True).start()
    started = time.monotonic()
    attempt = deliver(f"http://127.0.0.1:{port}/hook", b"{}", HEADERS, allow_loopback=True, timeout_s=1.0)
    took = time.monotonic() - started
    listener.close()
    assert attempt.status is None and attempt.error and "1 s" in attempt.error
    assert took < 2.0  # the whole answer would take 9 s


def test_a_name_server_that_never_answers_costs_the_attempt_its_deadline_only() -> None:
    def silent(host: str, port: int) -> list[str]:
        time.sleep(5)
        return ["127.0.0.1"]

    started = time.monotonic()
    attempt = deliver("https://slow.example.com/", b"{}", HEADERS, timeout_s=0.5, resolver=silent)
    assert attempt.status is None and "not resolved within 0.5 s" in (attempt.error or "")
    assert time.monotonic() - started < 2.0


def test_loopback_is_refused_outside_the_local_environment() -> None:
    with Consumer() as consumer:
        attempt = deliver(consumer.url, b"{}", HEADERS)
        assert attempt.refused and attempt.status is None and "loopback" in (attempt.error or "")
        assert consumer.received == []


@pytest.mark.parametrize(
    "answers",
    [["10.1.2.3"], ["169.254.169.254"], ["8.8.8.8", "192.168.0.10"], ["fd00::5"], ["::ffff:127.0.0.1"]],
)
def test_a_name_that_resolves_to_a_private_address_is_refused(answers: list[str]) -> None:
    connected: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        connected.append(host)
        return answers

    attempt = deliver("https://hooks.example.com/x", b"{}", HEADERS, resolver=resolver)
    assert attempt.refused and attempt.status is None and attempt.address is None
    assert "refused: hooks.example.com resolves to" in (attempt.error or "")
    assert connected == ["hooks.example.com"]  # resolved once, at delivery time


def test_a_name_that_does_not_resolve_fails_the_attempt() -> None:
    def resolver(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    attempt = deliver("https://nowhere.example/x", b"{}", HEADERS, resolver=resolver)
    assert attempt.status is None and not attempt.refused and "could not be resolved" in (attempt.error or "")


def test_the_connection_goes_to_the_checked_address_with_the_names_host_header() -> None:
    with Consumer() as consumer:
        attempt = deliver(
            f"http://127.0.0.1:{consumer.port}/hook",
            b"{}",
            HEADERS,
            allow_loopback=True,
            resolver=lambda host, port: ["127.0.0.1"],
        )
    assert attempt.status == 200 and attempt.address == "127.0.0.1"


def _certificate(tmp: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp / f"{name}.crt", tmp / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


@pytest.fixture
def tls_consumer(tmp_path: Path) -> Iterator[tuple[Consumer, Path]]:
    """A loopback HTTPS consumer with a certificate for hooks.test, and that certificate."""
    cert, key = _certificate(tmp_path, "hooks.test")
    consumer = Consumer()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    consumer.server.socket = context.wrap_socket(consumer.server.socket, server_side=True)
    with consumer:
        yield consumer, cert


@pytest.mark.parametrize(("name", "verified"), [("hooks.test", True), ("other.test", False)])
def test_tls_goes_to_the_checked_address_and_verifies_the_host_name(
    tls_consumer: tuple[Consumer, Path], name: str, verified: bool
) -> None:
    consumer, cert = tls_consumer
    trust = ssl.create_default_context(cafile=str(cert))
    attempt = deliver(
        f"https://{name}:{consumer.port}/hook",
        b"{}",
        HEADERS,
        allow_loopback=True,
        resolver=lambda host, port: [str(ipaddress.ip_address("127.0.0.1"))],
        tls=trust,
    )
    if verified:
        assert attempt.status == 200, attempt
        assert consumer.received[0]["headers"]["Host"] == f"hooks.test:{consumer.port}"
    else:
        assert attempt.status is None and "CERTIFICATE_VERIFY_FAILED" in (attempt.error or ""), attempt
        assert consumer.received == []
