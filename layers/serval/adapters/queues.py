"""SQS: sending messages with string attributes (poison records with reasons, continuations)."""

from __future__ import annotations

from serval.adapters import clients


def send(queue_url: str, body: str, attributes: dict[str, str]) -> str:
    if not queue_url:
        raise RuntimeError("no queue URL is configured for this function")
    response = clients.sqs().send_message(
        QueueUrl=queue_url,
        MessageBody=body,
        MessageAttributes={k: {"DataType": "String", "StringValue": v or "-"} for k, v in attributes.items()},
    )
    return response["MessageId"]
