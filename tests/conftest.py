"""Shared test setup: the repo's code on sys.path, no real AWS ever, and how xdist groups tests."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Any

import botocore.loaders
import botocore.session
import pytest

from serval.settings import METRICS_NAMESPACE

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "layers", ROOT / "functions"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

# Never reach a real account from a test, whatever the developer's shell has.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ["AWS_ACCOUNT_ID_ENDPOINT_MODE"] = "disabled"
for leaked in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
    os.environ.pop(leaked, None)
# Powertools reads its service name and metrics namespace from the environment when a handler
# module is imported. A test process imports many functions' handlers, so they share these
# (a test that needs one function's own imports its handler with that environment).
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "serval-tests")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", METRICS_NAMESPACE)

# moto's mock_aws gives every test a new default boto3 session, and every new botocore session
# parses the SDK's endpoint and service JSON again (about a second per test on the `aws` fixture).
# The data files are the same for the whole run, so sessions share one loader; what they load
# from it is read-only (one session already shares it between all its clients).
botocore.session.create_loader = functools.cache(botocore.loaders.create_loader)


# ---- parallel runs: `make test` runs pytest -n auto --dist loadfile (pytest-xdist) ---------------
# A work unit runs on one worker, in collection order. It is a test module (so a module's own
# fixtures, a moto server or a local stack, are set up once), except that modules sharing a
# session fixture form one unit, so that fixture is built once per run rather than once per worker.
SHARED_SESSION_UNITS = {
    "tests/infra/": "infra: one CDK synthesis (the synth fixture)",
    "tests/browser/": "browser: one local stack and one Chromium (the web_stack and browser fixtures)",
    **dict.fromkeys(
        (
            "tests/e2e/test_dev_stack.py",
            "tests/e2e/test_fuzz.py",
            "tests/e2e/test_workflow.py",
            "tests/e2e/test_webhooks_live.py",
        ),
        "e2e: one local stack (the dev_stack fixture)",
    ),
}


def work_unit(nodeid: str) -> str:
    path = nodeid.split("::", 1)[0]
    return next((unit for prefix, unit in SHARED_SESSION_UNITS.items() if path.startswith(prefix)), path)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadfile``, with the shared-session units above; other modes as xdist has them."""
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class SessionFixtureScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    # Units go out in collection order: e2e and infra, the slowest, first; the many small unit
    # modules last, where they even out the workers' finishing times.
    config.option.loadscopereorder = False
    return SessionFixtureScheduling(config, log)
