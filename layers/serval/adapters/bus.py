"""EventBridge: publish domain events in batches of 10 (the PutEvents limit)."""

from __future__ import annotations

from collections.abc import Sequence

from serval.adapters import clients
from serval.domain.events import SOURCE, DomainEvent

PUT_EVENTS_LIMIT = 10


def publish(bus_name: str, events: Sequence[DomainEvent]) -> int | None:
    """Publish in order. Returns the index of the first event that failed, or None."""
    for start in range(0, len(events), PUT_EVENTS_LIMIT):
        chunk = events[start : start + PUT_EVENTS_LIMIT]
        response = clients.events().put_events(
            Entries=[
                {
                    "EventBusName": bus_name,
                    "Source": SOURCE,
                    "DetailType": event.type,
                    "Detail": event.model_dump_json(),
                    "Resources": [
                        f"serval:project/{event.project_id}" if event.project_id else "serval:organisation"
                    ],
                }
                for event in chunk
            ]
        )
        if response.get("FailedEntryCount"):
            failed = next(i for i, entry in enumerate(response["Entries"]) if entry.get("ErrorCode"))
            return start + failed
    return None
