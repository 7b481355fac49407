"""The whole local stack in one object: what ``make dev`` runs, and what tests start.

Start order matters:
1. patch moto (Lambda runtime, DynamoDB Query/transactions), start its server, and hand
   every invocation to warm worker processes of its function (:mod:`infra.local.workers`);
2. create every spec resource (streams and upload notifications still off);
3. restore the saved state (so restoring triggers nothing);
4. switch on table streams and upload notifications, and queue a resume request for every
   task the state shows waiting in Label or Review (moto kept no executions;
   :mod:`infra.local.executions`);
5. start the event-source pollers (the starter re-creates those executions; the start waits
   for them to be back in their waits), then the local API gateway;
6. seed the demo users, and on an empty state the demo project.

Stop runs it backwards within seconds: the pollers and the gateway take nothing new, the
workers are killed (an invocation in flight fails at once), the pollers are joined, the state
is saved, moto stops.

Besides the functions' warnings (:mod:`infra.local.console`), the console gets one short line
per API request and per pipeline step (:mod:`infra.local.activity`), through ``say``.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from infra.config import load
from infra.local import patches
from infra.local import seed as seeding
from infra.local.activity import Activity, count
from infra.local.console import FunctionLogs
from infra.local.executions import request_resumes
from infra.local.gateway import DEFAULT_PORT as DEFAULT_API_PORT
from infra.local.gateway import LocalApiGateway, frontend_root
from infra.local.moto_server import ACCOUNT_ID, REGION, MotoServer, process_environment
from infra.local.moto_server import DEFAULT_PORT as DEFAULT_MOTO_PORT
from infra.local.pollers import Poller, pollers_for
from infra.local.resources import LocalResources, connect_event_sources, provision
from infra.local.state import DEFAULT_DATA_DIR, LocalState, StateSummary
from infra.local.workers import ProcessRuntime, worker_base_environment
from infra.spec import ApiTrigger, ServalSpec, build

GIL_SWITCH_INTERVAL_S = 0.0005  # see LocalStack.start

log = logging.getLogger("serval.local")


LEASE_SECONDS_ENV = "SERVAL_LOCAL_LEASE_SECONDS"  # python -m infra.local --lease-seconds


def local_spec(api_port: int = DEFAULT_API_PORT) -> ServalSpec:
    """The local environment's spec; ``$SERVAL_LOCAL_LEASE_SECONDS`` shortens its leases (and its
    media URLs, which may not outlive a lease), as the browser tests of lease loss need.

    The web app's origin is the gateway's (``api_port``): on another port than the default, the
    buckets' CORS and the API's allowed origin follow it, as a deployment's follow its domain.
    """
    config = load("local")
    if api_port != DEFAULT_API_PORT:
        config = config.model_validate(
            config.model_dump() | {"frontend_origin": f"http://127.0.0.1:{api_port}"}
        )
    lease = os.environ.get(LEASE_SECONDS_ENV)
    if lease:
        seconds = int(lease)
        config = config.model_validate(
            config.model_dump()
            | {"lease_seconds": seconds, "media_url_seconds": min(seconds, config.media_url_seconds)}
        )
    return build(config, ACCOUNT_ID, REGION)


def local_concurrency(spec: ServalSpec) -> dict[str, int]:
    """Worker processes per function: its concurrency, at most two per core of this machine."""
    ceiling = max(2, 2 * (os.cpu_count() or 1))
    return {fn.name: min(fn.concurrency, ceiling) for fn in spec.functions.values()}


# How long a start waits for the re-created executions to be back in their waits before it
# opens the API (a submit before then would find a dead token).
RESUME_WAIT_S = 60.0


def console_line(line: str) -> None:
    """Print a line to stdout in one write, so lines printed by several threads never mix."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def worker_environment(moto_port: int, verbose: bool | None) -> dict[str, str]:
    """What every function's workers get besides the function's own variables: the moto
    endpoint, and the Powertools log level (INFO records only when the console shows them)."""
    base = process_environment(moto_port) | {"POWERTOOLS_LOG_LEVEL": "INFO" if verbose else "WARNING"}
    return worker_base_environment(base)


def logs_dir(data_dir: Path) -> Path:
    """Where each function's output is kept, one file per function (its log group)."""
    return data_dir / "logs"


def data_dir_from_env() -> Path:
    return Path(os.environ.get("SERVAL_DATA_DIR") or DEFAULT_DATA_DIR)


@dataclass
class LocalStack:
    spec: ServalSpec = field(default_factory=local_spec)
    say: seeding.Say = console_line
    save_state: bool = True
    poller_options: dict[str, dict[str, float]] = field(default_factory=dict)
    # Functions' output: True shows every line on the console; False keeps it in
    # <data dir>/logs/<function>.log and shows warnings and errors only; None shares this
    # process's output (tests).
    verbose: bool | None = None
    moto: MotoServer | None = field(default=None, init=False)
    gateway: LocalApiGateway | None = field(default=None, init=False)
    resources: LocalResources | None = field(default=None, init=False)
    restored: StateSummary = field(default_factory=StateSummary, init=False)
    demo_project_id: str | None = field(default=None, init=False)
    activity: Activity | None = field(default=None, init=False)
    _state: LocalState | None = field(default=None, init=False)
    _pollers: list[Poller] = field(default_factory=list, init=False)
    _runtime: ProcessRuntime | None = field(default=None, init=False)
    _patched_here: bool = field(default=False, init=False)
    _switch_interval: float | None = field(default=None, init=False)

    @property
    def api_url(self) -> str:
        assert self.gateway is not None, "start() first"
        return self.gateway.url

    @property
    def runtime(self) -> ProcessRuntime | None:
        """The worker processes that run the functions (None when stopped)."""
        return self._runtime

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
        # moto serves every request of every function from this one process, on many threads,
        # most of them waiting on sockets. With CPython's default 5 ms GIL switch interval a
        # thread woken by its socket waits up to 5 ms behind a busy one at every wake-up; 0.5 ms
        # halved the time to make 1,000 tasks leasable (docs/benchmarks.md).
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
        self.moto = MotoServer(port_moto)
        self.moto.start()
        data_dir = data_dir or data_dir_from_env()
        self._runtime = ProcessRuntime(
            base_env=worker_environment(self.moto.port, self.verbose),
            concurrency=local_concurrency(self.spec),
            logs=None if self.verbose is None else FunctionLogs(logs_dir(data_dir), verbose=self.verbose),
        )
        patches.use_runtime(self._runtime)
        self._state = LocalState(data_dir)
        resources = provision(self.spec, self.moto.endpoint_url)
        if restore:
            self.restored = self._state.restore(self.spec, resources)
        self.resources = resources = connect_event_sources(self.spec, resources)
        resuming = request_resumes(self.spec, resources) if not self.restored.is_empty else 0
        if resuming:
            self.say(f"Resuming the executions of {count(resuming, 'task')} that waited in Label or Review")
        self.activity = activity = Activity(self.say)
        activity.start()
        for poller in pollers_for(self.spec, resources, observe=activity.changes, **self.poller_options):
            poller.start()
            self._pollers.append(poller)  # only started ones: a stop during start joins those
        if resuming and not activity.wait_resumed(resuming, RESUME_WAIT_S):
            self.say(f"Not every execution was back within {RESUME_WAIT_S:.0f} s; the rest follow")
        self.gateway = LocalApiGateway(
            self.spec.api,
            resources,
            function_name=self._api_function_name(),
            allowed_origins=self.spec.config.cors_allowed_origins,
            port=port_api,
            static_root=static_root or frontend_root(),
            report=activity.request,
            spec=self.spec,
        )
        self.gateway.start()
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
        """Stop everything within seconds; returns what was saved (None when nothing was).

        Nothing new starts (pollers take no batch, the gateway no request), then the function
        workers are killed, so a long invocation in flight (a bulk job, a large import) fails at
        once as a crashed Lambda would, instead of holding the stop; its message is not deleted.
        Then the state is saved.
        """
        for poller in self._pollers:
            poller.request_stop()
        if self.gateway is not None:
            self.gateway.stop()
            self.gateway = None
        if self._runtime is not None:
            self._runtime.close()
        self.stop_pollers()
        if self.activity is not None:
            self.activity.stop()  # says what the last changes added up to
            self.activity = None
        if self._runtime is not None:
            patches.use_runtime(None)
            self._runtime = None
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
        if self._switch_interval is not None:
            sys.setswitchinterval(self._switch_interval)
            self._switch_interval = None
        return saved

    def __enter__(self) -> LocalStack:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
