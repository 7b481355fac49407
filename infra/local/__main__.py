"""``python -m infra.local`` (``make dev``): run Serval on this machine until Ctrl-C."""

from __future__ import annotations

import argparse
import faulthandler
import logging
import os
import signal
import sys
import threading
import warnings
from pathlib import Path
from types import FrameType

from infra.local.gateway import DEFAULT_PORT as DEFAULT_API_PORT
from infra.local.moto_server import DEFAULT_PORT as DEFAULT_MOTO_PORT
from infra.local.resources import LocalResources
from infra.local.seed import DEMO_USERS, permissions_summary
from infra.local.stack import LEASE_SECONDS_ENV, LocalStack, data_dir_from_env, local_spec, logs_dir


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m infra.local", description=__doc__)
    parser.add_argument("--moto-port", type=int, default=DEFAULT_MOTO_PORT, help="moto server port (4566)")
    parser.add_argument("--api-port", type=int, default=DEFAULT_API_PORT, help="API and frontend port (8000)")
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="local state ($SERVAL_DATA_DIR or .serval)"
    )
    parser.add_argument("--no-seed", action="store_true", help="create no demo users or project")
    parser.add_argument("--fresh", action="store_true", help="start empty, ignoring the saved state")
    parser.add_argument(
        "--lease-seconds",
        type=int,
        default=None,
        help="how long a task lease lasts (default: the local config's 1800)",
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="show every function's full JSON logs (default: warnings and errors; all of it in the log files)",
    )
    return parser.parse_args()


def banner(stack: LocalStack, resources: LocalResources, data_dir: Path) -> str:
    bucket = resources.bucket_names[stack.spec.uploads.bucket]
    project = stack.demo_project_id or "<project_id>"
    width = max(len(u.email) for u in DEMO_USERS)
    logins = "\n".join(
        f"    {u.email:<{width}}  {u.password}   ({u.label})\n      {permissions_summary(u)}"
        for u in DEMO_USERS
    )
    return f"""
Serval is running locally ({stack.spec.prefix}).

  API + frontend   {stack.api_url}
  Swagger UI       {stack.api_url}/swagger
  AWS (moto)       {stack.endpoint_url}   (any credentials, region {resources.region})
  Buckets          data: {bucket}
                   exports: {resources.bucket_names.get("exports", "-")}
  User pool        {resources.user_pool_id}   client {resources.user_pool_client_id}
  State            {data_dir}   (restored: {stack.restored.describe()})
  Function logs    {logs_dir(data_dir)}/<function>.log   (warnings also here; --verbose shows all)

  Logins (USER_PASSWORD_AUTH; send the IdToken as "Authorization: Bearer <token>"),
  each with what the user may do (README "Roles and permissions"):
{logins}

  Upload media or a manifest into a project (the ingest function picks it up):
    aws --endpoint-url {stack.endpoint_url} s3 cp ./image.png s3://{bucket}/{stack.spec.upload_prefix}{project}/image.png

Ctrl-C stops the stack and saves its state.
"""


def main() -> None:
    args = _arguments()
    # Powertools warns on every invocation that adds no metric (reads, mostly): noise on a console
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("werkzeug", "botocore"):  # a line per moto request or per client is noise
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # moto's Step Functions logs every error a state raises, even those the machine catches
    # (TaskDeleted, and each step that fails while the stack stops); RecordFailure records the rest
    logging.getLogger("moto.stepfunctions.parser.asl.component.eval_component").setLevel(logging.CRITICAL)
    data_dir = args.data_dir or data_dir_from_env()
    if args.lease_seconds is not None:
        os.environ[LEASE_SECONDS_ENV] = str(
            args.lease_seconds
        )  # read by local_spec(), here and in the workers
    stopping = threading.Event()

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt  # while starting: abandon the start, then stop what runs

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1 <pid>`: every thread's stack
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    stack = LocalStack(spec=local_spec(args.api_port), verbose=args.verbose)
    try:
        stack.start(args.moto_port, args.api_port, data_dir, seed=not args.no_seed, restore=not args.fresh)
        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        assert stack.resources is not None
        print(banner(stack, stack.resources, data_dir), flush=True)
        # Waiting in slices: a signal that the kernel hands to another thread runs its handler
        # only when the main thread next runs Python code, which an endless wait never does
        while not stopping.wait(0.5):
            pass
        print("Stopping: pollers, gateway, saving state ...", flush=True)
    except KeyboardInterrupt:
        print("Interrupted while starting: stopping ...", flush=True)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the save short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        saved = stack.stop()
        if saved is not None:
            print(f"Saved to {data_dir}: {saved.describe()}", flush=True)


def exit_now() -> None:
    """End the process once everything is stopped and saved, without the interpreter's teardown:
    it garbage-collects moto's whole heap, and a finalizer can wait forever on a lock that a
    daemon thread (a moto request or execution thread) held when it was frozen."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
    exit_now()
