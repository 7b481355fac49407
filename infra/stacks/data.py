from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput

from infra.constructs.data import ServalEventBus, ServalTables
from infra.constructs.secrets import ServalSecrets
from infra.stacks.base import ServalStack


class DataStack(ServalStack):
    """DynamoDB tables, the event bus and the generated secrets."""

    concern = "Data"

    def __init__(self, scope: Any, **kwargs: Any) -> None:
        super().__init__(scope, **kwargs)
        self.data = ServalTables(self, "Tables", spec=self.spec)
        self.events = ServalEventBus(self, "Events", spec=self.spec)
        self.secrets = ServalSecrets(self, "Secrets", spec=self.spec)
        CfnOutput(self, "EventBusName", value=self.events.bus.event_bus_name)
