"""TCP ports for the servers the tests start (moto, the local gateway, whole local stacks).

A port found free by binding port 0 comes from the kernel's ephemeral range, where every
outgoing connection of the machine also takes its source port; with tests running in parallel
(and stacks making thousands of connections) one can take it before the server binds it. So
tests pick from below that range, each pytest-xdist worker from its own slice, and never hand
out a port again before the rest of their slice.
"""

from __future__ import annotations

import itertools
import os
import random
import socket
from pathlib import Path

from infra.local.moto_server import HOST
from infra.local.moto_server import free_port as kernel_free_port

LOWEST = 20000  # above the ports that services commonly use


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def worker_slice(worker: str | None, workers: int, ephemeral_low: int) -> range:
    """The ports of pytest-xdist worker ``worker`` ("gw0", ...) of ``workers`` (None: no xdist);
    empty if the ephemeral range leaves no room below it."""
    index = int(worker.removeprefix("gw")) if worker else 0
    count = max(workers, index + 1)
    size = max(0, (ephemeral_low - LOWEST) // count)
    start = LOWEST + index * size
    return range(start, start + size)


SLICE = worker_slice(
    os.environ.get("PYTEST_XDIST_WORKER"),
    int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")),
    _ephemeral_low(),
)
# from a random place: another run (or a closed connection's TIME_WAIT) may still hold the first ones
_FIRST = random.randrange(len(SLICE)) if SLICE else 0
_CANDIDATES = itertools.cycle([*SLICE[_FIRST:], *SLICE[:_FIRST]])


def free_port() -> int:
    """A port of this worker's slice that nothing holds now; it comes round again only after
    every other port of the slice. (Without room below the ephemeral range: the kernel's pick.)"""
    for port in itertools.islice(_CANDIDATES, len(SLICE)):
        with socket.socket() as sock:
            try:
                sock.bind((HOST, port))
            except OSError:
                continue
            return port
    if SLICE:
        raise RuntimeError(f"every test port of {SLICE} is in use")
    return kernel_free_port()
