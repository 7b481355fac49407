"""Cold-start import time of each handler module, as a ratio to `import boto3` in the same run."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

from bench.report import Table

ROOT = Path(__file__).resolve().parent.parent
HANDLERS = ("api.handler", "ingest.handler", "events.handler")
RUNS = 7


def import_micros(module: str) -> int:
    """Cumulative import time of ``module`` in a fresh interpreter (-X importtime, µs)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "layers"), str(ROOT / "functions")])}
    env.pop("AWS_ENDPOINT_URL", None)
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    for line in reversed(result.stderr.splitlines()):
        fields = [f.strip() for f in line.removeprefix("import time:").split("|")]
        if len(fields) == 3 and fields[2] == module:
            return int(fields[1])
    raise RuntimeError(f"no import time for {module}: {result.stderr[-500:]}")


def median_micros(module: str) -> float:
    return statistics.median(import_micros(module) for _ in range(RUNS))


def run() -> Table:
    baseline = median_micros("boto3")
    table = Table(
        "Handler cold import (median of 7, -X importtime)",
        ["module", "ms", "x import boto3", "target <= 1.5x"],
    )
    table.add("boto3", f"{baseline / 1000:.1f}", "1.00", "")
    for module in HANDLERS:
        micros = median_micros(module)
        ratio = micros / baseline
        table.add(module, f"{micros / 1000:.1f}", f"{ratio:.2f}", "yes" if ratio <= 1.5 else "no")
    return table


if __name__ == "__main__":
    print(run().render())
