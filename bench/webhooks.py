"""Webhook deliveries on the live local stack.

One run of the local stack as `make dev` runs it (moto server, gateway, every poller, the
functions in their worker processes), with receivers on loopback that verify every delivery
with the ``standardwebhooks`` package (:mod:`infra.local.receiver`):

- **deliveries per second** with 1 and with 10 subscriptions per event: ``BENCH_HOOK_TASKS``
  tasks (default 500) are created in one request (each a ``task.created`` event; the
  ``import.completed`` of the request too); from the first delivery to the last, every
  subscription's receiver counted;
- **latency from the committed change to its delivery**: the event's ``occurred_at`` (the
  stream record's creation time: the commit) to the receiver's arrival time, p50 and p99;
- **AWS requests per delivered event**: every botocore call the dispatcher's workers made
  while those events were delivered (:mod:`bench.metering`), per event and per delivery.

The other pollers run too: the same events also start the tasks' workflow executions.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.flow import TEXT_LABELS, _demo, _forget_clients
from bench.metering import metered
from bench.report import Table, percentile
from infra.local.moto_server import free_port
from infra.local.receiver import Receiver
from infra.local.seed import call_api
from infra.local.stack import LocalStack
from serval.domain.models import epoch_of

TASKS = int(os.environ.get("BENCH_HOOK_TASKS", "500"))
FANOUTS = (1, 10)


def _one_fanout(stack: LocalStack, admin: str, subscriptions: int, rates: Table, costs: Table) -> None:
    body = {"name": f"Webhooks x{subscriptions}", "media_types": ["text"], "label_config": TEXT_LABELS}
    project_id = str(call_api(stack.api_url, admin, "POST", "/projects", body)["project_id"])
    receiver = Receiver(secrets=[]).start()
    try:
        for _ in range(subscriptions):
            created = call_api(
                stack.api_url,
                admin,
                "POST",
                f"/projects/{project_id}/webhooks",
                {"url": receiver.url, "event_types": ["task.created"]},
            )
            receiver.secrets.append(created["secret"])
        expected = TASKS * subscriptions
        tasks: Any = [{"data": {"text": f"webhook bench {i}"}} for i in range(TASKS)]  # a list body
        with metered() as calls:
            call_api(stack.api_url, admin, "POST", f"/projects/{project_id}/tasks", tasks)
            got = receiver.wait_for(expected, timeout_s=600)
        dispatcher = calls.of_function("webhooks")
    finally:
        receiver.stop()
    arrivals = sorted(r.at for r in got)
    span = max(arrivals[-1] - arrivals[0], 1e-6)
    latencies = [(r.at - epoch_of(r.event["occurred_at"])) * 1000 for r in got]
    rates.add(
        subscriptions,
        TASKS,
        len(got),
        len({r.webhook_id for r in got}),
        f"{len(got) / span:.0f}",
        f"{percentile(latencies, 50):.0f}",
        f"{percentile(latencies, 99):.0f}",
        len(receiver.rejected),
    )
    total = sum(dispatcher.values())
    by_call = ", ".join(f"{name.split(':', 1)[1]} {n}" for name, n in dispatcher.most_common())
    costs.add(subscriptions, total, f"{total / TASKS:.2f}", f"{total / len(got):.3f}", by_call)


def run() -> Iterator[Table]:
    _forget_clients()
    rates = Table(
        f"Deliveries to a loopback receiver ({TASKS} task.created events; live stack, all pollers)",
        [
            "subs/event",
            "events",
            "deliveries",
            "distinct ids",
            "deliveries/s",
            "commit->delivery p50 ms",
            "p99 ms",
            "rejected",
        ],
    )
    costs = Table(
        "AWS requests of the dispatcher per delivered event (every call its workers made)",
        ["subs/event", "requests", "per event", "per delivery", "by call"],
    )
    with tempfile.TemporaryDirectory() as data_dir:
        stack = LocalStack(save_state=False, say=lambda _: None)
        stack.start(
            port_moto=free_port(), port_api=free_port(), data_dir=Path(data_dir), seed=True, restore=False
        )
        try:
            admin = _demo(stack, "admin").token
            for subscriptions in FANOUTS:
                _one_fanout(stack, admin, subscriptions, rates, costs)
                time.sleep(1)
        finally:
            stack.stop()
    yield rates
    yield costs


if __name__ == "__main__":
    for table in run():
        print(table.render(), flush=True)
