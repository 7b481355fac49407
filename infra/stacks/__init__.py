"""Thin stacks: each only wires the constructs of one concern."""

from infra.stacks.api import ApiStack
from infra.stacks.auth import AuthStack
from infra.stacks.base import ServalStack
from infra.stacks.data import DataStack
from infra.stacks.events import EventsStack
from infra.stacks.frontend import FrontendStack
from infra.stacks.ingest import IngestStack
from infra.stacks.jobs import JobsStack
from infra.stacks.storage import StorageStack
from infra.stacks.workflow import WorkflowStack

__all__ = [
    "ApiStack",
    "AuthStack",
    "DataStack",
    "EventsStack",
    "FrontendStack",
    "IngestStack",
    "JobsStack",
    "ServalStack",
    "StorageStack",
    "WorkflowStack",
]
