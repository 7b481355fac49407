"""What the local stack did, in short lines on its console: one per API request, and one per
pipeline step.

- The gateway reports every API request when it answers: ``POST /projects/p_1/next 200 12 ms
  annotator@serval.local``.
- The tasks table's changes, as its stream consumer's poller reads them, tell what the pipelines
  did. The domain events they make (:func:`serval.domain.events.from_change`) that end a
  pipeline's step get a line each: ``ingest: 1,000 tasks from reviews.jsonl in 2.1 s`` (an
  import completed), ``export: job j_1 done (jsonl, 1,000 tasks) in 3.2 s`` (a job finished).
  Per-task steps are summed up and said at most once a second: ``ingest: 36 tasks from uploaded
  files``, ``workflow: 40 executions started, 12 tasks completed``; a long import says how far it
  got every ``progress_s``.

Nothing here parses the functions' logs (those go to their log files; see
:mod:`infra.local.console`).
"""

from __future__ import annotations

import json
import logging
import posixpath
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from serval.domain.events import from_change

log = logging.getLogger("serval.local.activity")

TASKS_TABLE = "tasks"  # the spec's id of the table whose changes are the pipelines' steps
# A job's kind as the console names it.
JOB_LABELS = {"dataset_export": "export", "audit_export": "audit export", "bulk": "bulk"}
WORKFLOW_COUNTS = (  # what a second of the workflow's steps adds up to, in this order
    ("started", "execution started", "executions started"),
    ("resumed", "execution resumed", "executions resumed"),
    ("completed", "task completed", "tasks completed"),
    ("escalated", "task escalated", "tasks escalated"),
    ("failed", "task failed", "tasks failed"),
)


@dataclass(frozen=True)
class ApiRequest:
    """One request the gateway answered."""

    method: str
    path: str
    status: int
    elapsed_ms: float
    who: str | None  # the caller's email (or user name); None without a verified token


def count(n: int, one: str, many: str | None = None) -> str:
    """``1 task``, ``1,000 tasks``."""
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def _s(image: dict[str, Any], name: str) -> str | None:
    value = image.get(name)
    return value.get("S") if isinstance(value, dict) else None


def _n(image: dict[str, Any], name: str) -> int:
    value = image.get(name)
    return int(float(value["N"])) if isinstance(value, dict) and "N" in value else 0


def _json(image: dict[str, Any], name: str) -> dict[str, Any]:
    try:
        value = json.loads(_s(image, name) or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _seconds(start: str | None, end: str | None) -> float | None:
    try:
        return (datetime.fromisoformat(str(end)) - datetime.fromisoformat(str(start))).total_seconds()
    except ValueError:
        return None


def _took(start: str | None, end: str | None, word: str = "in") -> str:
    seconds = _seconds(start, end)
    return "" if seconds is None else f" {word} {seconds:.1f} s"


@dataclass
class _Import:
    name: str
    tasks: int = 0
    reported: int = 0  # tasks said so far
    reported_at: float = 0.0


@dataclass
class Activity:
    """Turns requests and table changes into console lines (``say``); thread-safe."""

    say: Callable[[str], None]
    interval_s: float = 1.0
    progress_s: float = 10.0
    clock: Callable[[], float] = time.monotonic
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _uploads: int = field(default=0, init=False)
    _workflow: dict[str, int] = field(default_factory=dict, init=False)
    _imports: dict[str, _Import] = field(default_factory=dict, init=False)
    _lines: list[str] = field(default_factory=list, init=False)  # finished steps, said at the next flush
    _resumed_total: int = field(default=0, init=False)
    _resumed_changed: threading.Condition = field(init=False)
    _stopping: threading.Event = field(default_factory=threading.Event, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self._resumed_changed = threading.Condition(self._lock)

    def wait_resumed(self, n: int, timeout_s: float) -> bool:
        """Wait until ``n`` waits were taken over by re-created executions; False on timeout."""
        with self._resumed_changed:
            return self._resumed_changed.wait_for(lambda: self._resumed_total >= n, timeout_s)

    # ------------------------------------------------------------------ what comes in

    def request(self, served: ApiRequest) -> None:
        who = served.who or "-"
        self.say(f"{served.method} {served.path} {served.status} {served.elapsed_ms:.0f} ms {who}")

    def changes(self, table_id: str, records: list[dict[str, Any]]) -> None:
        """A batch of a table's stream records (only the tasks table's say anything)."""
        if table_id != TASKS_TABLE:
            return
        with self._lock:
            for record in records:
                try:
                    self._change(record)
                except (KeyError, TypeError, ValueError) as exc:  # a record of another shape
                    log.debug("an unexpected stream record (%s): %s", exc, record)

    def _change(self, record: dict[str, Any]) -> None:
        kind = record["eventName"]
        change = record.get("dynamodb", {})
        old, new = change.get("OldImage", {}), change.get("NewImage", {})
        entity = _s(new or old, "entity")
        if entity == "task" and kind == "INSERT":
            self._task_created(new)  # (its task.created event is not needed: the source says more)
            return
        types = {e.type for e in from_change(str(record.get("eventID", "")), kind, old, new, "")}
        if entity == "task" and kind == "MODIFY":
            self._task_changed(old, new, types)
        elif types & {"import.completed", "import.failed"}:
            self._import_finished(new)
        elif types and entity == "job":  # one of the job kinds' *.completed
            self._job_finished(new)

    def _task_created(self, new: dict[str, Any]) -> None:
        source = _json(new, "source")
        if not source.get("key"):
            return  # created through the API: its request said so
        import_id = _s(new, "import_id")
        if import_id is None:
            self._uploads += 1  # a media object: one task per uploaded file
            return
        progress = self._imports.setdefault(
            import_id, _Import(posixpath.basename(str(source["key"])), reported_at=self.clock())
        )
        progress.tasks += 1

    def _task_changed(self, old: dict[str, Any], new: dict[str, Any], events: set[str]) -> None:
        appeared = {name for name in new if name not in old}
        self._add("started", "execution_started_at" in appeared)
        self._add("escalated", "escalated_at" in appeared)
        self._add("failed", "workflow_error" in appeared)
        self._add("completed", "task.completed" in events)
        # A step token replaced by another: a re-created execution took the wait over
        taken_over = any(
            _s(old, t) and _s(new, t) and _s(old, t) != _s(new, t) for t in ("label_token", "review_token")
        )
        self._add("resumed", taken_over)
        if taken_over:
            self._resumed_total += 1
            self._resumed_changed.notify_all()

    def _add(self, what: str, happened: bool) -> None:
        if happened:
            self._workflow[what] = self._workflow.get(what, 0) + 1

    def _import_finished(self, new: dict[str, Any]) -> None:
        if _s(new, "source") == "api":
            return  # its request said so
        self._imports.pop(str(_s(new, "import_id")), None)
        name = posixpath.basename(_s(new, "key") or "?")
        created, took = _n(new, "tasks_created"), (_s(new, "created_at"), _s(new, "completed_at"))
        if _s(new, "status") == "failed":
            self._lines.append(
                f"ingest: import of {name} failed{_took(*took, 'after')} ({count(created, 'task')})"
            )
            return
        extra = [
            count(n, what)
            for n, what in ((_n(new, "duplicates"), "duplicate"), (_n(new, "errors"), "line error"))
            if n
        ]
        more = f" ({', '.join(extra)})" if extra else ""
        self._lines.append(f"ingest: {count(created, 'task')} from {name}{_took(*took)}{more}")

    def _job_finished(self, new: dict[str, Any]) -> None:
        kind = _s(new, "kind") or "job"
        params = _json(new, "params")
        done, failed = _n(new, "done"), _n(new, "failed")
        what = params.get("format") or params.get("operation")
        details = [str(what)] if what else []
        details.append(count(done, "record" if kind == "audit_export" else "task"))
        if failed:
            details.append(f"{failed:,} failed")
        outcome = "done" if _s(new, "status") == "succeeded" else "failed"
        took = _took(_s(new, "created_at"), _s(new, "finished_at"))
        self._lines.append(
            f"{JOB_LABELS.get(kind, kind)}: job {_s(new, 'job_id')} {outcome} ({', '.join(details)}){took}"
        )

    # ------------------------------------------------------------------ what goes out

    def flush(self) -> None:
        """Say what finished, and what the per-task steps added up to since the last flush."""
        with self._lock:
            lines, self._lines = self._lines, []
            if self._uploads:
                lines.insert(0, f"ingest: {count(self._uploads, 'task')} from uploaded files")
                self._uploads = 0
            now = self.clock()
            for progress in self._imports.values():
                if progress.tasks > progress.reported and now - progress.reported_at >= self.progress_s:
                    lines.append(f"ingest: {count(progress.tasks, 'task')} so far from {progress.name}")
                    progress.reported, progress.reported_at = progress.tasks, now
            steps = [
                count(self._workflow[k], one, many)
                for k, one, many in WORKFLOW_COUNTS
                if self._workflow.get(k)
            ]
            if steps:
                lines.append(f"workflow: {', '.join(steps)}")
            self._workflow.clear()
        for line in lines:
            self.say(line)

    def start(self) -> None:
        """Flush every ``interval_s`` in a thread of its own, until :meth:`stop`."""
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="local-activity", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.wait(self.interval_s):
            self.flush()

    def stop(self) -> None:
        """Stop flushing, and say what is left."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.flush()
