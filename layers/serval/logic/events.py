"""Tasks-table stream -> domain events on the bus, with stream partial-batch semantics."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from serval.adapters import bus
from serval.domain.events import DomainEvent, from_change
from serval.settings import settings


def _at(record: dict[str, Any]) -> str:
    seconds = record.get("dynamodb", {}).get("ApproximateCreationDateTime")
    moment = datetime.fromtimestamp(float(seconds), UTC) if seconds else datetime.now(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def publish_changes(records: list[dict[str, Any]]) -> list[str]:
    """Publish the events of a stream batch. Returns the sequence numbers to retry from.

    Streams are ordered per shard, so on a failure everything from the record of the first
    failed event on is retried (at-least-once; event ids are stable, so repeats are detectable).
    A record may announce several events, or none.
    """
    events: list[DomainEvent] = []
    sequence_of: list[str] = []  # per event: its record's sequence number
    for record in records:
        change = record.get("dynamodb", {})
        announced = from_change(
            record["eventID"],
            record["eventName"],
            change.get("OldImage", {}),
            change.get("NewImage", {}),
            _at(record),
        )
        events += announced
        sequence_of += [change["SequenceNumber"]] * len(announced)
    failed = bus.publish(settings().EVENT_BUS, events)
    return [] if failed is None else [sequence_of[failed]]
