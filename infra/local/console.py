"""What the local stack's functions print: every line in a log file per function, the console calm.

Each worker process writes its stdout and stderr into a pipe; :class:`FunctionLogs` copies every
line to ``<data dir>/logs/<function name>.log`` (the function's log group, as CloudWatch keeps
it) and shows on the console only what deserves attention: structured log records at WARNING
or above. With ``verbose`` every line is shown too, prefixed with the function's name.
"""

from __future__ import annotations

import json
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TextIO

ATTENTION = frozenset({"WARNING", "ERROR", "CRITICAL"})


def deserves_attention(line: str) -> bool:
    """A Powertools log record at WARNING or above (metrics and INFO records stay in the file)."""
    try:
        record = json.loads(line)
    except ValueError:
        return False
    return isinstance(record, dict) and str(record.get("level", "")).upper() in ATTENTION


@dataclass
class FunctionLogs:
    log_dir: Path
    verbose: bool = False
    console: TextIO = field(default_factory=lambda: sys.stdout)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def path(self, function_name: str) -> Path:
        return self.log_dir / f"{function_name}.log"

    def follow(self, function_name: str, output: IO[bytes]) -> threading.Thread:
        """Copy a worker's output until it closes (in a thread of its own)."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        thread = threading.Thread(
            target=self._copy, args=(function_name, output), name=f"logs-{function_name}", daemon=True
        )
        thread.start()
        return thread

    def _copy(self, function_name: str, output: IO[bytes]) -> None:
        with output, self.path(function_name).open("a", encoding="utf-8") as log_file:
            for raw in output:
                line = raw.decode("utf-8", errors="replace")
                with self._lock:
                    log_file.write(line)
                    log_file.flush()
                    if self.verbose or deserves_attention(line):
                        self.console.write(f"{function_name}: {line}")
                        self.console.flush()
