"""The whole local stack in one object: what ``make dev`` runs, and what tests start.

Start order matters:
1. patch moto (Lambda runtime, DynamoDB Query/transactions), start its server;
2. create every spec resource (streams and upload notifications still off);
3. restore the saved state (so restoring triggers nothing);
4. switch on table streams and upload notifications;
5. start the local API gateway and the event-source pollers;
6. seed the demo users, and on an empty state the demo project.

Stop runs it backwards: pollers, gateway, save the state, moto.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from infra.config import load
from infra.local import patches
from infra.local import seed as seeding
from infra.local.gateway import DEFAULT_PORT as DEFAULT_API_PORT
from infra.local.gateway import LocalApiGateway, frontend_root
from infra.local.moto_server import ACCOUNT_ID, REGION, MotoServer
from infra.local.moto_server import DEFAULT_PORT as DEFAULT_MOTO_PORT
from infra.local.pollers import Poller, pollers_for
from infra.local.resources import LocalResources, connect_event_sources, provision
from infra.local.state import DEFAULT_DATA_DIR, LocalState, StateSummary
from infra.spec import ApiTrigger, ServalSpec, build

log = logging.getLogger("serval.local")


def local_spec() -> ServalSpec:
    return build(load("local"), ACCOUNT_ID, REGION)


def share_powertools_settings(spec: ServalSpec) -> list[str]:
    """Put the Powertools settings every function has, with the same value, into ``os.environ``.

    Powertools reads them when a handler module is imported, as Lambda allows; in this
    one process only the values common to all functions can be there. The rest of each
    function's environment is bound per invocation (:mod:`infra.local.lambda_runtime`).
    """
    environments = [fn.environment for fn in spec.functions.values()]
    added = []
    for name, value in environments[0].items():
        common = all(env.get(name) == value for env in environments)
        if name.startswith("POWERTOOLS_") and common and name not in os.environ:
            os.environ[name] = value
            added.append(name)
    return added


def data_dir_from_env() -> Path:
    return Path(os.environ.get("SERVAL_DATA_DIR") or DEFAULT_DATA_DIR)


@dataclass
class LocalStack:
    spec: ServalSpec = field(default_factory=local_spec)
    say: seeding.Say = print
    save_state: bool = True
    poller_options: dict[str, dict[str, float]] = field(default_factory=dict)
    moto: MotoServer | None = field(default=None, init=False)
    gateway: LocalApiGateway | None = field(default=None, init=False)
    resources: LocalResources | None = field(default=None, init=False)
    restored: StateSummary = field(default_factory=StateSummary, init=False)
    demo_project_id: str | None = field(default=None, init=False)
    _state: LocalState | None = field(default=None, init=False)
    _pollers: list[Poller] = field(default_factory=list, init=False)
    _patched_here: bool = field(default=False, init=False)
    _shared_settings: list[str] = field(default_factory=list, init=False)

    @property
    def api_url(self) -> str:
        assert self.gateway is not None, "start() first"
        return self.gateway.url

    @property
    def endpoint_url(self) -> str:
        assert self.moto is not None, "start() first"
        return self.moto.endpoint_url

    def start(
        self,
        port_moto: int = DEFAULT_MOTO_PORT,
        port_api: int = DEFAULT_API_PORT,
        data_dir: Path | None = None,
        seed: bool = True,
        *,
        restore: bool = True,
        static_root: Path | None = None,
    ) -> LocalStack:
        self._patched_here = not patches.is_installed()
        patches.install()
        self._shared_settings = share_powertools_settings(self.spec)
        self.moto = MotoServer(port_moto)
        self.moto.start()
        self._state = LocalState(data_dir or data_dir_from_env())
        resources = provision(self.spec, self.moto.endpoint_url)
        if restore:
            self.restored = self._state.restore(self.spec, resources)
        self.resources = resources = connect_event_sources(self.spec, resources)
        self.gateway = LocalApiGateway(
            self.spec.api,
            resources,
            function_name=self._api_function_name(),
            allowed_origins=self.spec.config.cors_allowed_origins,
            port=port_api,
            static_root=static_root or frontend_root(),
        )
        self.gateway.start()
        self._pollers = pollers_for(self.spec, resources, **self.poller_options)
        for poller in self._pollers:
            poller.start()
        if seed:
            self.demo_project_id = seeding.seed(
                self.spec,
                resources,
                self.gateway.url,
                with_project=not any(self.restored.items.values()),
                say=self.say,
            )
        return self

    def _api_function_name(self) -> str:
        (api,) = [f for f in self.spec.functions.values() if isinstance(f.trigger, ApiTrigger)]
        return api.name

    def stop_pollers(self) -> None:
        """Stop the event-source pollers (benchmarks isolate the API path with this)."""
        for poller in self._pollers:
            poller.stop()
        self._pollers = []

    def stop(self) -> StateSummary | None:
        """Stop everything; returns what was saved (None when nothing was)."""
        self.stop_pollers()
        if self.gateway is not None:
            self.gateway.stop()
            self.gateway = None
        saved = None
        if self.save_state and self._state is not None and self.resources is not None:
            saved = self._state.save(self.spec, self.resources)
        if self.moto is not None:
            self.moto.reset()  # moto's backends are process-wide: leave nothing for the next stack
            self.moto.stop()
            self.moto = None
        self.resources = None
        if self._patched_here:
            patches.uninstall()
        for name in self._shared_settings:
            os.environ.pop(name, None)
        return saved

    def __enter__(self) -> LocalStack:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
