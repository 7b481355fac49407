"""Consensus and quality: gold tasks, and per-annotator quality and throughput."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from api.guard import actor, guarded
from api.telemetry import count
from serval.domain.permissions import Action
from serval.logic import quality
from serval.logic.quality import AnnotatorsReport, GoldRequest, GoldTask

router = APIGatewayRouter()
Id = Annotated[str, Path(min_length=1, max_length=64)]
GOLD = "/projects/<project_id>/tasks/<task_id>/gold"
FirstDay = Annotated[
    date | None, Query(description="First UTC day (yyyy-mm-dd), inclusive; default: 30 days ago.")
]
LastDay = Annotated[date | None, Query(description="Last UTC day (yyyy-mm-dd), inclusive; default: today.")]


@router.put(
    GOLD,
    tags=["quality"],
    summary="Mark a new or queued task as gold, with its known results",
    description="The task leaves the label queue; `/next` mixes it in at `settings.gold_rate` and scores "
    "each answer against these results. 409 when the task is being labelled or is past the queue.",
    **guarded(Action.TASK_GOLD),
)
def mark_gold(project_id: Id, task_id: Id, body: GoldRequest) -> GoldTask:
    gold = quality.mark_gold(project_id, task_id, body, actor(router))
    count("GoldTaskMarked")
    return gold


@router.delete(
    GOLD,
    tags=["quality"],
    summary="Make a gold task ordinary again (back in the queue)",
    **guarded(Action.TASK_GOLD),
)
def unmark_gold(project_id: Id, task_id: Id) -> GoldTask:
    return quality.unmark_gold(project_id, task_id, actor(router))


@router.get(
    "/projects/<project_id>/annotators",
    tags=["quality"],
    summary="Per annotator: annotations, throughput, gold accuracy, agreement, review rejections",
    description="Answers from counters (activity per day, quality per annotator), never a scan.",
    **guarded(Action.ACTIVITY_READ),
)
def annotators(project_id: Id, since: FirstDay = None, until: LastDay = None) -> AnnotatorsReport:
    return quality.annotators(project_id, since, until)
