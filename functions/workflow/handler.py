"""Workflow Lambda: the task state machine's steps (route, label/review waits, export, completion).

Transient failures are raised as ``TransientError``, which the state machine retries by
name; a step whose task (or project) is gone raises ``TaskDeleted``, which ends the execution
in its ``Deleted`` state; any other error fails the step, and the state machine records it
on the task.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from serval.errors import NotFound, Throttled
from serval.logic import workflow

# Service name and metrics namespace: the function's POWERTOOLS_* environment (infra/spec.py)
logger = Logger()
tracer = Tracer()


class TransientError(Exception):
    """Worth retrying as is: DynamoDB throttling (the state machine retries it by name)."""


class TaskDeleted(Exception):
    """The step's task was deleted: nothing to do (the state machine catches it by name,
    ``serval.logic.workflow.TASK_DELETED``)."""


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(
        action=event.get("action"), project_id=event.get("project_id"), task_id=event.get("task_id")
    )
    try:
        return workflow.run_step(event)
    except Throttled as exc:
        logger.warning("transient workflow failure", reason=str(exc))
        raise TransientError(str(exc)) from exc
    except NotFound as exc:
        logger.info("the task is gone", reason=str(exc))
        raise TaskDeleted(str(exc)) from exc
