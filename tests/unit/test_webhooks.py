"""Standard Webhooks signing, retry schedule, outcomes and the SSRF and URL rules (domain only)."""

from __future__ import annotations

import base64
import random

import pytest

from serval.domain import webhooks as w

# The example of the Standard Webhooks specification (its README), so the signature is checked
# against a value Serval's code did not produce.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_signature_is_the_specifications_example() -> None:
    assert w.sign(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE


def test_a_rotation_sends_both_signatures_the_current_first() -> None:
    new = w.new_secret()
    headers = w.delivery_headers([new, SPEC_SECRET], SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY)
    first, second = headers["webhook-signature"].split(" ")
    assert first == w.sign(new, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY)
    assert second == SPEC_SIGNATURE
    assert headers["webhook-id"] == SPEC_ID and headers["webhook-timestamp"] == str(SPEC_TIMESTAMP)
    with pytest.raises(ValueError, match="at least one"):
        w.delivery_headers([], SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY)


def test_new_secrets_have_the_standard_format_and_differ() -> None:
    secrets = {w.new_secret() for _ in range(50)}
    assert len(secrets) == 50
    for secret in secrets:
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"))) == w.SECRET_BYTES


@pytest.mark.parametrize(
    "bad",
    ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_not base64!", "whsec_" + base64.b64encode(b"short").decode()],
)
def test_malformed_secrets_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        w.secret_key(bad)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, w.Outcome.DELIVERED),
        (204, w.Outcome.DELIVERED),
        (299, w.Outcome.DELIVERED),
        (410, w.Outcome.GONE),
        (301, w.Outcome.FAILED),  # redirects are never followed: a failure
        (400, w.Outcome.FAILED),
        (404, w.Outcome.FAILED),
        (429, w.Outcome.FAILED),
        (500, w.Outcome.FAILED),
        (None, w.Outcome.FAILED),  # a network error or the timeout
    ],
)
def test_what_an_answer_means(status: int | None, outcome: w.Outcome) -> None:
    assert w.outcome_of(status) is outcome


def test_the_retry_schedule_spans_more_than_a_day_with_bounded_jitter() -> None:
    rng = random.Random(7)
    delays = [w.retry_delay(n, rng) for n in range(1, len(w.RETRY_SCHEDULE_S) + 1)]
    for delay, base in zip(delays, w.RETRY_SCHEDULE_S, strict=True):
        assert delay is not None and base * 0.9 <= delay <= base * 1.1
    assert sum(w.RETRY_SCHEDULE_S) * 0.9 > 24 * 3600
    assert w.retry_delay(len(w.RETRY_SCHEDULE_S) + 1, rng) is None  # spent: to the DLQ
    assert len({w.retry_delay(1, rng) for _ in range(20)}) > 1  # jittered, not fixed
    with pytest.raises(ValueError):
        w.retry_delay(0)


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "127.0.0.1",
        "::1",
        "169.254.169.254",  # the instance metadata service
        "fe80::1",
        "fd00::1",
        "fc00::1",
        "100.64.0.1",
        "0.0.0.0",
        "::",
        "224.0.0.1",
        "ff02::1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "240.0.0.1",
        "not-an-ip",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert w.address_refusal(address) is not None


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert w.address_refusal(address) is None


def test_loopback_only_is_allowed_locally() -> None:
    assert w.address_refusal("127.0.0.1", allow_loopback=True) is None
    assert w.address_refusal("::1", allow_loopback=True) is None
    assert w.address_refusal("10.0.0.1", allow_loopback=True) is not None
    assert w.address_refusal("169.254.169.254", allow_loopback=True) is not None


@pytest.mark.parametrize(
    ("url", "local", "allowed"),
    [
        ("https://hooks.example.com/serval", False, True),
        ("https://hooks.example.com:8443/x?y=1", False, True),
        ("http://hooks.example.com/serval", False, False),
        ("http://127.0.0.1:9000/hook", False, False),
        ("http://127.0.0.1:9000/hook", True, True),
        ("http://localhost:9000/hook", True, False),
        ("http://10.0.0.1/hook", True, False),
        ("https://user:pass@hooks.example.com/", False, False),
        ("https://hooks.example.com/#frag", False, False),
        ("ftp://hooks.example.com/", False, False),
        ("https:///nohost", False, False),
        ("https://hooks.example.com:99999/", False, False),
        ("https://example.com/" + "a" * 2100, False, False),
    ],
)
def test_subscription_urls(url: str, local: bool, allowed: bool) -> None:
    assert (w.url_refusal(url, local=local) is None) is allowed
