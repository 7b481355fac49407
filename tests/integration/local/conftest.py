"""Fixtures of the local-stack tests: moto's server in this process, with the local stack's patches.

Each test module gets its own server (moto's state is process-wide, so it is reset
when the module ends) and leaves the process as it found it: environment and patches.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra.local import patches
from infra.local.moto_server import MotoServer
from infra.local.resources import LocalResources, connect_event_sources, provision
from infra.local.stack import local_spec
from infra.spec import ServalSpec
from tests.ports import free_port


@pytest.fixture(scope="module")
def moto_server() -> Iterator[MotoServer]:
    installed_before = patches.is_installed()
    patches.install()
    server = MotoServer(free_port())
    server.start()
    yield server
    server.reset()
    server.stop()
    if not installed_before:
        patches.uninstall()


@pytest.fixture(scope="module")
def spec() -> ServalSpec:
    return local_spec()


@pytest.fixture(scope="module")
def resources(moto_server: MotoServer, spec: ServalSpec) -> LocalResources:
    """Every resource of the spec, created on the module's moto server."""
    return connect_event_sources(spec, provision(spec, moto_server.endpoint_url))
