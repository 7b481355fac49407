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

from collections import Counter
from dataclasses import dataclass, field

from serval.adapters import projects, tasks
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


@dataclass
class Report:
    """What one run found and did."""

    projects: int = 0
    repairs: Counter[Repair] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, int]:
        return {"projects": self.projects} | {kind.value: self.repairs[kind] for kind in Repair}


def run(now: int | None = None) -> Report:
    """One pass over every project: each overdue handoff is delivered, or its execution re-created."""
    now = epoch_now() if now is None else now
    report = Report()
    cursor: str | None = None
    while True:
        page, cursor = projects.list_page(PROJECT_PAGE, cursor)
        for project in page:
            report.projects += 1
            for task_id in store.overdue_handoffs(project.project_id, now):
                report.repairs[repair_handoff(project.project_id, task_id, now)] += 1
        if not cursor:
            return report


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
