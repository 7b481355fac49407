from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from api.guard import actor, guarded, project_access
from api.routes.common import Cursor, Limit, Page
from api.telemetry import count
from serval.domain.models import Annotation, AnnotationCreate
from serval.domain.permissions import Action
from serval.logic import annotations as annotation_logic

router = APIGatewayRouter()
Id = Annotated[str, Path(min_length=1, max_length=64)]
BASE = "/projects/<project_id>/tasks/<task_id>/annotations"


@router.post(
    BASE,
    status_code=201,
    tags=["annotations"],
    summary="Annotate a task outside the queue: managers on any open task, others on the task they "
    "lease; never on an approved, exported or archived task",
    **guarded(Action.ANNOTATION_CREATE),
)
def create_annotation(project_id: Id, task_id: Id, body: AnnotationCreate) -> Annotation:
    annotation = annotation_logic.create(project_id, task_id, body, actor(router), project_access(router))
    count("AnnotationCreated")
    return annotation


@router.get(
    BASE,
    tags=["annotations"],
    summary="List a task's annotations (an annotator's own only, unless the project allows more)",
    **guarded(Action.ANNOTATION_READ),
)
def list_annotations(
    project_id: Id, task_id: Id, limit: Limit = 50, cursor: Cursor = None
) -> Page[Annotation]:
    items, next_cursor = annotation_logic.list_page(
        project_id, task_id, actor(router), project_access(router), limit, cursor
    )
    return Page[Annotation](items=items, next_cursor=next_cursor)


@router.get(
    BASE + "/<annotation_id>",
    tags=["annotations"],
    summary="Get an annotation",
    **guarded(Action.ANNOTATION_READ),
)
def get_annotation(project_id: Id, task_id: Id, annotation_id: Id) -> Annotation:
    return annotation_logic.get(project_id, task_id, annotation_id, actor(router), project_access(router))
