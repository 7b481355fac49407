"""The reconciler: finishes the work that a crash or an outage left half-done.

It runs on a schedule (an EventBridge schedule in AWS, a timer in the local stack; see
``infra/spec.py``). It reads only what is overdue, by key, never a scan of the tasks. Every
repair is conditional on the state it read, so a second run, or two runs at once, repair
nothing twice. Each repair is audited (``task.repair``, by ``system:reconciler``), and the
handler counts it in a metric.

Step handoffs (:mod:`serval.domain.handoffs`) are results of human work (a round's last
submit, a review decision, a manager's requeue from review) that were committed but never
reached the waiting step. That happens when ``SendTaskSuccess`` failed after the SDK's retries,
when the function crashed right after its commit, or when the execution was gone. For each
handoff that is overdue, the reconciler:

* hands the step the result with the token the task holds (the step has it now);
* finds that the token answers nothing while its execution still runs: the step had the result
  already, and only the outbox entry is cleared;
* finds the execution gone: it asks the starter to re-create it straight into that step
  (:func:`serval.logic.workflow.resume`, throttled as every start), and the new execution's
  entry takes the wait over with a token of its own. The outbox entry becomes overdue again
  one grace period later, and that run hands the new step the result.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from serval.adapters import audit, projects, tasks, window
from serval.adapters import queue as store
from serval.adapters import workflow as machine
from serval.domain.actor import Actor
from serval.domain.executions import ResumeRequest, current_execution
from serval.domain.handoffs import GRACE_S, Delivery, Execution, Handoff, Repair
from serval.errors import NotFound
from serval.logic import workflow
from serval.logic.queue import epoch_now
from serval.settings import settings

RECONCILER = "reconciler"
REPAIR_ACTION = "task.repair"
PROJECT_PAGE = 100
# An execution this young is never stopped as an orphan: a re-created one runs a moment before
# its task hears of it (its entry takes the wait over).
ORPHAN_AGE_S = GRACE_S


@dataclass
class Report:
    """What one run found and did."""

    projects: int = 0
    repairs: Counter[Repair] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, int]:
        return {"projects": self.projects} | {kind.value: self.repairs[kind] for kind in Repair}


def run(now: int | None = None) -> Report:
    """One pass over every project: each overdue handoff is delivered (or its execution
    re-created first), a window with free slots and a backlog is refilled, each task left
    waiting by a dead execution gets a new one; then each running execution whose task is
    gone, or was taken over by another, is stopped."""
    now = epoch_now() if now is None else now
    report = Report()
    arn = settings().STATE_MACHINE_ARN
    running = {r.name: r for r in machine.running(arn)}
    expected: set[str] = set()
    cursor: str | None = None
    while True:
        page, cursor = projects.list_page(PROJECT_PAGE, cursor)
        for project in page:
            report.projects += 1
            project_id = project.project_id
            repaired: set[str] = set()
            for task_id in store.overdue_handoffs(project_id, now):
                report.repairs[repair_handoff(project_id, task_id, now)] += 1
                repaired.add(task_id)
            if refill_stalled(project_id):
                report.repairs[Repair.BACKLOG_REFILLED] += 1
            for wait in store.waiting(project_id):
                expected.add(wait.execution)
                if wait.execution not in running and wait.task_id not in repaired:
                    kind = resume_lost(project_id, wait)
                    if kind is not None:
                        report.repairs[kind] += 1
        if not cursor:
            break
    settled_before = time.time() - ORPHAN_AGE_S
    for execution in running.values():
        if execution.name not in expected and execution.started < settled_before:
            kind = stop_orphan(execution.name)
            if kind is not None:
                report.repairs[kind] += 1
    return report


def refill_stalled(project_id: str) -> bool:
    """Ask the starter to fill the project's window when it has free slots while tasks wait in
    its backlog: the refill an ending execution asks for was lost (two reads: the window, then
    one backlog item only when a slot is free)."""
    free = settings().ACTIVE_WINDOW - window.open_count(project_id)
    if free <= 0 or not window.backlog(project_id, 1):
        return False
    workflow.request_refill(project_id)
    after = {"repair": Repair.BACKLOG_REFILLED.value, "free_slots": free}
    audit.record_alone(_reconciler(), REPAIR_ACTION, "project", project_id, project_id, after=after)
    return True


def resume_lost(project_id: str, wait: store.Waiting) -> Repair | None:
    """The task waits under the token of an execution that is not running: ask the starter for
    a new one, straight into that step (None when it runs after all: listed late)."""
    if machine.execution_state(settings().STATE_MACHINE_ARN, wait.execution) is Execution.RUNNING:
        return None
    workflow.request_resume(ResumeRequest(project_id, wait.task_id, wait.execution))
    after = {"repair": Repair.EXECUTION_RESUMED.value, "step": wait.step.value, "execution": wait.execution}
    audit.record_alone(_reconciler(), REPAIR_ACTION, "task", wait.task_id, project_id, after=after)
    return Repair.EXECUTION_RESUMED


def stop_orphan(name: str) -> Repair | None:
    """Stop a running execution whose task is gone or runs another execution now; None when
    the task is still its own (between two steps)."""
    arn = settings().STATE_MACHINE_ARN
    started_with = machine.execution_input(arn, name)
    if not started_with or not started_with.get("project_id") or not started_with.get("task_id"):
        return None  # not one of Serval's task executions
    project_id, task_id = str(started_with["project_id"]), str(started_with["task_id"])
    try:
        item = tasks.get_item(project_id, task_id)
        reason = None if current_execution(task_id, item.execution_name) == name else "superseded"
    except NotFound:
        reason = "the task was deleted"
    if reason is None:
        return None
    if not machine.stop(arn, name, "Orphaned", reason):
        return None
    after = {"repair": Repair.EXECUTION_STOPPED.value, "execution": name, "reason": reason}
    audit.record_alone(_reconciler(), REPAIR_ACTION, "task", task_id, project_id, after=after)
    return Repair.EXECUTION_STOPPED


def pending(project_id: str, now: int | None = None) -> int:
    """How many of the project's handoffs are overdue: what the next run will repair."""
    return store.count_overdue_handoffs(project_id, epoch_now() if now is None else now)


def repair_handoff(project_id: str, task_id: str, now: int) -> Repair:
    """Deliver the task's overdue handoff, or re-create its execution so that it can be."""
    try:
        item = tasks.get_item(project_id, task_id)
    except NotFound:
        return Repair.SUPERSEDED  # deleted: its outbox entry went with it
    pending_ = Handoff.from_stored(item.handoff)
    entry = item.GSI4SK
    if pending_ is None or entry is None:
        return Repair.SUPERSEDED  # delivered since the index was read
    attribute = pending_.token_attribute
    token = getattr(item, attribute)
    execution = current_execution(task_id, item.execution_name)
    detail = {"step": pending_.step.value, "execution": execution}

    def settle(kind: Repair, token: tuple[str, str] | None = None, due: int | None = None) -> Repair:
        after = {"repair": kind.value} | detail
        changed = store.settle_handoff(
            project_id, task_id, str(entry), _reconciler(), REPAIR_ACTION, after, token=token, due=due
        )
        return kind if changed else Repair.SUPERSEDED

    if not token:
        return settle(Repair.SUPERSEDED)
    delivered = machine.deliver(str(token), pending_.output)
    if delivered is Delivery.DELIVERED:
        return settle(Repair.DELIVERED, token=(attribute, str(token)))
    if delivered is Delivery.NOT_DELIVERED:
        return Repair.RETRY  # still overdue: the next run tries again
    if machine.execution_state(settings().STATE_MACHINE_ARN, execution) is Execution.RUNNING:
        return settle(Repair.ALREADY_DELIVERED, token=(attribute, str(token)))
    workflow.request_resume(ResumeRequest(project_id, task_id, execution))
    return settle(Repair.RESUMED, due=now + GRACE_S)


def _reconciler() -> Actor:
    return Actor.system(RECONCILER)
