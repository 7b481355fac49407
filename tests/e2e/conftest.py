"""The local stack started exactly as `make dev` starts it: `python -m infra.local` in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.conftest import ROOT
from tests.ports import free_port

READY = "Ctrl-C stops the stack"
SAVED = "Saved to"
# How long Ctrl-C may take: nothing new starts, the workers are killed, the state is saved.
STOP_TIMEOUT_S = 30.0


@dataclass
class DevStack:
    process: subprocess.Popen[str]
    api_url: str
    endpoint_url: str
    data_dir: Path
    output: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None  # copies the process's output into ``output``

    def text(self) -> str:
        return "".join(self.output)

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """Ctrl-C, as a developer stops ``make dev``: the stack must exit by itself within
        ``timeout_s``, having saved its state. A stack that hangs fails the test (it is killed
        only to clean up)."""
        self.process.send_signal(signal.SIGINT)
        try:
            code = self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGUSR1)  # the launcher prints every thread's stack
            time.sleep(2)
            self.process.kill()
            self.process.wait(timeout=30)
            if self.reader is not None:
                self.reader.join(timeout=10)
            pytest.fail(
                f"the local stack did not exit within {timeout_s} s of Ctrl-C:\n{self.text()[-40000:]}"
            )
        if self.reader is not None:
            self.reader.join(timeout=10)  # the last lines it printed
        assert code == 0, f"the local stack exited with {code}:\n{self.text()[-5000:]}"
        assert SAVED in self.text(), f"the local stack did not save its state:\n{self.text()[-5000:]}"
        return code


def start_dev_stack(
    data_dir: Path, timeout_s: float = 180, extra: tuple[str, ...] = (), ready_line: str = READY
) -> DevStack:
    """``python -m infra.local`` on free ports, once it printed ``ready_line`` (its banner's end)."""
    moto_port, api_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    # as a clone without ../shared/ runs it: the demo media come from the repository's own copy
    env["SERVAL_SHARED_DIR"] = str(data_dir / "no-shared")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "infra.local",
            "--moto-port",
            str(moto_port),
            "--api-port",
            str(api_port),
            "--data-dir",
            str(data_dir),
            *extra,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    stack = DevStack(process, f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{moto_port}", data_dir)
    ready = threading.Event()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            stack.output.append(line)
            if ready_line in line:
                ready.set()

    stack.reader = threading.Thread(target=pump, daemon=True)
    stack.reader.start()
    deadline = time.monotonic() + timeout_s
    while not ready.wait(0.2):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the local stack did not come up:\n{stack.text()[-5000:]}")
    return stack


@pytest.fixture(scope="package")
def dev_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    """One stack for the e2e modules that only add their own projects and read what they made
    (test_dev_stack, test_fuzz, test_workflow); stopped when the last of them is done. A module
    that counts the stack's records or changes its users starts its own (test_authz_matrix)."""
    stack = start_dev_stack(tmp_path_factory.mktemp("serval-state"))
    yield stack
    # After a busy module too, Ctrl-C stops it within STOP_TIMEOUT_S, its state saved
    stack.stop()


# ---- calls into a running stack, shared by the e2e modules --------------------------------


def aws_client(stack: DevStack, service: str) -> Any:
    """A boto3 client of the stack's moto server."""
    return boto3.client(
        service,
        endpoint_url=stack.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def http(
    stack: DevStack, method: str, path: str, token: str | None = None, body: Any = None
) -> tuple[int, Any]:
    """One request to the stack's API gateway: (status, JSON body or None)."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        stack.api_url + path,
        method=method,
        headers=headers,
        data=json.dumps(body).encode() if body is not None else None,
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, json.loads(raw) if raw else None


def wait_for(check: Callable[[], Any], timeout_s: float = 60.0, what: str = "the condition") -> Any:
    """``check()``'s first truthy value, polled every 0.2 s; fails the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def demo_token(stack: DevStack, role: str) -> str:
    """The ID token of the demo user with global ``role``, signed in on the stack's user pool."""
    from infra.local.seed import DEMO_USERS

    user = next(u for u in DEMO_USERS if u.role == role)
    cognito = aws_client(stack, "cognito-idp")
    pool = cognito.list_user_pools(MaxResults=10)["UserPools"][0]["Id"]
    client = cognito.list_user_pool_clients(UserPoolId=pool, MaxResults=10)["UserPoolClients"][0]["ClientId"]
    result = cognito.initiate_auth(
        ClientId=client,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": user.email, "PASSWORD": user.password},
    )
    return str(result["AuthenticationResult"]["IdToken"])
