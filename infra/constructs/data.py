"""DynamoDB tables and the EventBridge bus."""

from __future__ import annotations

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from constructs import Construct

from infra.constructs.naming import construct_id, removal_policy
from infra.spec import ServalSpec, TableSpec


def _key(name: str) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING)


class ServalTables(Construct):
    """Every table of ``spec.tables``: string keys, ALL-projected GSIs, TTL, NEW_AND_OLD_IMAGES stream."""

    def __init__(self, scope: Construct, construct_id_: str, *, spec: ServalSpec) -> None:
        super().__init__(scope, construct_id_)
        self._spec = spec
        self.tables: dict[str, dynamodb.Table] = {t.id: self._table(t) for t in spec.tables.values()}

    def _table(self, table_spec: TableSpec) -> dynamodb.Table:
        config = self._spec.config
        table = dynamodb.Table(
            self,
            construct_id(table_spec.id, "Table"),
            table_name=table_spec.name,
            partition_key=_key(table_spec.pk),
            sort_key=_key(table_spec.sk),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            stream=dynamodb.StreamViewType[table_spec.stream] if table_spec.stream else None,
            time_to_live_attribute=table_spec.ttl_attribute,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=config.point_in_time_recovery
            ),
            deletion_protection=config.deletion_protection,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            removal_policy=removal_policy(config),
        )
        for index in table_spec.indexes:
            table.add_global_secondary_index(
                index_name=index.name,
                partition_key=_key(index.pk),
                sort_key=_key(index.sk),
                projection_type=dynamodb.ProjectionType.ALL,
            )
        return table


class ServalEventBus(Construct):
    """The custom bus every domain event goes to (``spec.event_bus_name``)."""

    def __init__(self, scope: Construct, construct_id_: str, *, spec: ServalSpec) -> None:
        super().__init__(scope, construct_id_)
        self.bus = events.EventBus(self, "Bus", event_bus_name=spec.event_bus_name)
