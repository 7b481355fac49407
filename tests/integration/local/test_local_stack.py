"""The whole local stack, started as ``make dev`` starts it: seeded, stopped with its state saved, restarted."""

from __future__ import annotations

import os
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import pytest

from infra.local import patches
from infra.local.seed import DEMO_USERS, id_token
from infra.local.stack import LocalStack
from infra.local.state import LocalState
from tests.integration.local.helpers import create_function, invoke
from tests.ports import free_port


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def demo_subs(stack: LocalStack) -> dict[str, str]:
    assert stack.resources is not None
    cognito = boto3.client("cognito-idp")
    return {
        user.email: cognito.admin_get_user(UserPoolId=stack.resources.user_pool_id, Username=user.email)[
            "Username"
        ]
        for user in DEMO_USERS
    }


def test_the_stack_seeds_guards_the_api_saves_and_restores(tmp_path: Path) -> None:
    messages: list[str] = []
    options: dict[str, dict[str, float]] = {
        "sqs": {"wait_time_s": 1},
        "stream": {"poll_interval_s": 0.1, "retry_base_s": 0.05},
    }

    # Given a stack started on an empty data directory, with seeding
    with LocalStack(say=messages.append, poller_options=options).start(
        free_port(), free_port(), tmp_path, seed=True
    ) as stack:
        assert stack.resources is not None
        # Then every demo user signs in
        for user in DEMO_USERS:
            assert id_token(stack.resources, user)
        first_subs = demo_subs(stack)
        # And the gateway refuses the API without a token
        assert status_of(f"{stack.api_url}/projects") == 401
        pool = stack.resources.user_pool_id

    # When it stops, its state is saved, and the process is as before
    assert (tmp_path / "state" / "state.json").is_file()
    assert not patches.is_installed()
    assert "AWS_ENDPOINT_URL" not in os.environ

    # And when it starts again on the same directory
    with LocalStack(say=messages.append, poller_options=options).start(
        free_port(), free_port(), tmp_path, seed=True
    ) as again:
        # Then the same pool and the same users (same subs, same passwords) are back
        assert again.resources is not None
        assert again.resources.user_pool_id == pool
        assert again.restored.users == len(DEMO_USERS)
        assert demo_subs(again) == first_subs
        for user in DEMO_USERS:
            assert id_token(again.resources, user)


def test_a_busy_port_fails_fast_and_leaves_the_process_clean(tmp_path: Path) -> None:
    # Given a port something else listens on
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        stack = LocalStack(say=lambda _: None)

        # When the stack is started on it
        with pytest.raises(SystemExit, match=f"port {port}"):
            stack.start(port, free_port(), tmp_path, seed=False)
        stack.stop()

    # Then it failed at once, and stopping left no patches, environment or saved state behind
    assert not patches.is_installed()
    assert "AWS_ENDPOINT_URL" not in os.environ
    assert not (tmp_path / "state").exists()


def test_stopping_kills_an_invocation_in_flight_before_it_saves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a running stack with a function whose invocation would take two minutes
    stack = LocalStack(say=lambda _: None).start(free_port(), free_port(), tmp_path, seed=False)
    outcome: dict[str, Any] = {}
    save = LocalState.save
    runtime = stack.runtime
    assert runtime is not None

    def recording_save(self: LocalState, *args: Any, **kwargs: Any) -> Any:
        outcome["running_when_saving"] = runtime.busy("stop-slow")
        return save(self, *args, **kwargs)

    monkeypatch.setattr(LocalState, "save", recording_save)
    try:
        create_function("stop-slow", "whoami", timeout=300)

        def call() -> None:
            outcome["response"], outcome["payload"] = invoke("stop-slow", {"sleep": 120})

        caller = threading.Thread(target=call)
        caller.start()
        for _ in range(600):  # until the invocation runs in its worker (bounded)
            if runtime.busy("stop-slow"):
                break
            time.sleep(0.05)
        assert runtime.busy("stop-slow") == 1
    finally:
        # When the stack is stopped (Ctrl-C)
        saved = stack.stop()
    caller.join()

    # Then the invocation was ended as a crashed Lambda's is, before the state was saved
    assert outcome["payload"]["errorType"] == "Runtime.ExitError"
    assert outcome["running_when_saving"] == 0
    assert saved is not None
    assert not patches.is_installed()
