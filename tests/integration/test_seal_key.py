"""The audit seal key is read from Secrets Manager once per cache period (Powertools parameters)."""

from __future__ import annotations

from serval.adapters import audit
from serval.domain.actor import Actor
from tests.faults import injected
from tests.integration.conftest import Aws
from tests.integration.queue_helpers import project


def test_audited_writes_read_the_seal_key_once_until_it_is_forgotten(aws: Aws, admin: Actor) -> None:
    # Given a fresh process's view of the key
    audit.forget_seal_key()
    with injected() as faults:
        faults.arm(None)
        # When three audited changes are made
        for _ in range(3):
            project(admin)
        first = faults.calls.count("GetSecretValue")
        # And the key is forgotten (a rotation that must apply at once), then one more change
        audit.forget_seal_key()
        project(admin)
        faults.disarm()
    # Then the secret was read once for the three, and once more after forgetting it
    assert (first, faults.calls.count("GetSecretValue")) == (1, 2)
