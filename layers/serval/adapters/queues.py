"""SQS: sending messages with string attributes (poison records with reasons, continuations)."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from serval.adapters import clients
from serval.errors import Throttled

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef, SendMessageBatchRequestEntryTypeDef

SEND_BATCH_LIMIT = 10  # SendMessageBatch takes at most 10 entries


def _attributes(attributes: dict[str, str]) -> dict[str, MessageAttributeValueTypeDef]:
    return {k: {"DataType": "String", "StringValue": v or "-"} for k, v in attributes.items()}


def _check(queue_url: str) -> None:
    if not queue_url:
        raise RuntimeError("no queue URL is configured for this function")


def send(queue_url: str, body: str, attributes: dict[str, str]) -> str:
    _check(queue_url)
    response = clients.sqs().send_message(
        QueueUrl=queue_url, MessageBody=body, MessageAttributes=_attributes(attributes)
    )
    return response["MessageId"]


MAX_DELAY_S = 900  # SQS delays a message by 15 minutes at most


def send_batch(
    queue_url: str,
    bodies: Sequence[str],
    attributes: dict[str, str],
    attempts: int = 6,
    delays: Sequence[int] | None = None,
) -> int:
    """Send every body (each with ``attributes``, and ``delays[i]`` seconds of delay when given)
    in SendMessageBatch calls of 10, sending the entries SQS failed again with backoff; returns
    the calls made. Raises Throttled when some still fail after ``attempts`` tries (the
    caller's message is then retried)."""
    _check(queue_url)

    def entry(i: str, body: str) -> SendMessageBatchRequestEntryTypeDef:
        sent: SendMessageBatchRequestEntryTypeDef = {
            "Id": i,
            "MessageBody": body,
            "MessageAttributes": _attributes(attributes),
        }
        if delays is not None:
            sent["DelaySeconds"] = max(0, min(MAX_DELAY_S, delays[int(i)]))
        return sent

    calls = 0
    for base in range(0, len(bodies), SEND_BATCH_LIMIT):
        pending = {str(i): bodies[i] for i in range(base, min(len(bodies), base + SEND_BATCH_LIMIT))}
        for attempt in range(attempts):
            response = clients.sqs().send_message_batch(
                QueueUrl=queue_url,
                Entries=[entry(i, body) for i, body in pending.items()],
            )
            calls += 1
            pending = {f["Id"]: pending[f["Id"]] for f in response.get("Failed", [])}
            if not pending:
                break
            time.sleep(random.uniform(0, min(2.0, 0.05 * 2**attempt)))
        if pending:
            raise Throttled(f"SQS did not take {len(pending)} messages", details={"queue": queue_url})
    return calls
