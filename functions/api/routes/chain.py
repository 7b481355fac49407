"""Audit chain verification: is a scope's audit trail intact?"""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from api.guard import guarded
from serval import keys
from serval.domain.audit import ChainReport
from serval.domain.permissions import Action
from serval.logic import audit_chain

router = APIGatewayRouter()
ProjectId = Annotated[str, Path(min_length=1, max_length=64)]


@router.get(
    "/projects/<project_id>/audit/verify",
    tags=["audit"],
    summary="Verify a project's audit hash chain",
    description="Walks the project's chain in order: seals, links, sequence and head. "
    "Records written in the last few minutes and not linked yet count as pending.",
    **guarded(Action.AUDIT_VERIFY),
)
def verify_project_chain(project_id: ProjectId) -> ChainReport:
    return audit_chain.verify(keys.audit_scope(project_id))


@router.get(
    "/audit/verify",
    tags=["audit"],
    summary="Verify the global audit hash chain (changes outside any project)",
    **guarded(Action.AUDIT_READ_ALL),
)
def verify_global_chain() -> ChainReport:
    return audit_chain.verify(keys.GLOBAL_SCOPE)
