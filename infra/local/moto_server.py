"""moto's server, run inside this process so the hooks in :mod:`infra.local.patches` apply to it.

Starting it points every AWS SDK client of the process (boto3, pynamodb, the
handlers) at it through ``AWS_ENDPOINT_URL`` with dummy credentials.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import urllib.request
from dataclasses import dataclass, field

from moto.server import ThreadedMotoServer

DEFAULT_PORT = 4566
HOST = "127.0.0.1"
ACCOUNT_ID = "123456789012"  # moto's default account; infra.config's "local" uses the same
REGION = "us-east-1"


def free_port() -> int:
    """A TCP port that was free a moment ago (for tests)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def ensure_port_free(port: int, what: str) -> None:
    """Fail fast on a busy port (moto's ThreadedMotoServer would wait forever for its thread)."""
    with socket.socket() as sock:
        try:
            sock.bind((HOST, port))
        except OSError as exc:
            raise SystemExit(
                f"{what}: port {port} on {HOST} is in use ({exc.strerror}); pick another"
            ) from None


def process_environment(port: int) -> dict[str, str]:
    """What every SDK client in this process needs to talk to the local moto server."""
    return {
        "MOTO_PORT": str(port),
        "AWS_ENDPOINT_URL": f"http://{HOST}:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        # DynamoDB Streams calls otherwise go to an account-specific host that moto doesn't route.
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        # Deterministic user pool and client ids: tokens and saved state survive a restart.
        "MOTO_COGNITO_IDP_USER_POOL_ID_STRATEGY": "HASH",
        "MOTO_COGNITO_IDP_USER_POOL_CLIENT_ID_STRATEGY": "HASH",
    }


@dataclass
class MotoServer:
    port: int = DEFAULT_PORT
    _server: ThreadedMotoServer | None = field(default=None, init=False, repr=False)
    _previous_env: dict[str, str | None] = field(default_factory=dict, init=False, repr=False)

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> None:
        """Start serving, point this process's SDK clients at it, enable Step Functions execution."""
        ensure_port_free(self.port, "moto server")
        environment = process_environment(self.port)
        self._previous_env = {name: os.environ.get(name) for name in environment}
        os.environ.update(environment)
        # werkzeug writes a line per request to stderr (thousands a second under load): warnings only
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = ThreadedMotoServer(ip_address=HOST, port=self.port, verbose=False)
        self._server.start()
        self.configure({"stepfunctions": {"execute_state_machine": True}})

    def configure(self, config: dict[str, object]) -> None:
        """``POST /moto-api/config``: moto's runtime switches."""
        self._moto_api("config", config)

    def reset(self) -> None:
        """Forget every resource of every service (moto's backends are process-wide)."""
        if self._server is not None:
            self._moto_api("reset", None)

    def stop(self) -> None:
        """Stop serving and give the process its previous SDK environment back."""
        if self._server is not None:
            self._server.stop()
            self._server = None
        for name, value in self._previous_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._previous_env = {}

    def _moto_api(self, path: str, body: dict[str, object] | None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/{path}", data=data, method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
