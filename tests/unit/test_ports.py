"""Test ports: each pytest-xdist worker picks from its own slice, below the ephemeral range."""

from __future__ import annotations

import socket

from tests import ports


def test_workers_slices_are_disjoint_and_below_the_ephemeral_range() -> None:
    # Given four workers and the kernel's default ephemeral range
    slices = [ports.worker_slice(f"gw{i}", 4, 32768) for i in range(4)]
    # Then no port is in two slices, and every one is below 32768 and above the common ones
    taken = [port for one in slices for port in one]
    assert len(taken) == len(set(taken)) == 4 * len(slices[0]) > 0
    assert min(taken) >= ports.LOWEST and max(taken) < 32768
    # And a run without xdist has the whole room
    assert ports.worker_slice(None, 1, 32768) == range(ports.LOWEST, 32768)


def test_no_room_below_the_ephemeral_range_leaves_an_empty_slice() -> None:
    assert len(ports.worker_slice("gw1", 2, ports.LOWEST + 1)) == 0


def test_free_port_hands_out_distinct_bindable_ports() -> None:
    # When several ports are asked for before any is bound
    picked = [ports.free_port() for _ in range(5)]
    # Then they differ, lie in this worker's slice, and each can be bound
    assert len(set(picked)) == 5
    assert all(port in ports.SLICE for port in picked)
    for port in picked:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))
