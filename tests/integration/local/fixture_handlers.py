"""Throwaway Lambda handlers for the local-stack tests (registered only by the tests).

Most run in this process through the in-process runtime, so they record what they saw in
module globals the tests read; ``whoami`` and ``crash`` are for the worker-process runtime,
and report through their results instead.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

from serval.settings import settings

lock = threading.Lock()
sqs_deliveries: list[dict[str, Any]] = []  # one entry per message delivery
stream_invocations: list[list[str]] = []  # the sequence numbers of each invocation
stream_records: list[dict[str, Any]] = []  # every record received
scheduled_events: list[dict[str, Any]] = []  # every scheduled invocation's event
# Stream behaviour: "ok", "partial" (report failing records) or "error" (raise on a failing record).
stream_mode = {"mode": "ok"}


def reset() -> None:
    with lock:
        sqs_deliveries.clear()
        stream_invocations.clear()
        stream_records.clear()
        scheduled_events.clear()
        stream_mode["mode"] = "ok"


def echo(event: Any, context: Any) -> dict[str, Any]:
    """What the function saw: its event, its context and its settings."""
    return {
        "event": event,
        "tasks_table": settings().TASKS_TABLE,
        "process_has_tasks_table": "TASKS_TABLE" in os.environ,
        "context": {
            "function_name": context.function_name,
            "aws_request_id": context.aws_request_id,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "invoked_function_arn": context.invoked_function_arn,
            "remaining_ms": context.get_remaining_time_in_millis(),
        },
    }


_invocations = {"count": 0}  # per execution environment (worker process)


def whoami(event: Any, context: Any) -> dict[str, Any]:
    """Which execution environment ran this, what it has in os.environ, and how warm it is."""
    _invocations["count"] += 1
    time.sleep(float(event.get("sleep", 0)) if isinstance(event, dict) else 0)
    return {
        "pid": os.getpid(),
        "invocations_here": _invocations["count"],
        "tasks_table_in_environ": os.environ.get("TASKS_TABLE"),
        "lambda_name_in_environ": os.environ.get("AWS_LAMBDA_FUNCTION_NAME"),
        "endpoint": os.environ.get("AWS_ENDPOINT_URL"),
    }


def chatty(event: Any, context: Any) -> str:
    """Prints what a Powertools function prints: an INFO record, a WARNING record, a metric."""
    print(json.dumps({"level": "INFO", "message": "routine", "service": "chatty"}))
    print(json.dumps({"level": "WARNING", "message": "look at this", "service": "chatty"}))
    print(json.dumps({"_aws": {"CloudWatchMetrics": []}, "Requests": 1}))
    return "said"


def powertools_levels(event: Any, context: Any) -> str:
    """Logs an INFO and a WARNING record through Powertools, at the environment's log level."""
    from aws_lambda_powertools import Logger

    logger = Logger(service="levels")
    logger.info("routine")
    logger.warning("look at this")
    return "logged"


def crash(event: Any, context: Any) -> None:
    """Ends the execution environment abruptly, as a segfault or an OOM kill would."""
    os._exit(3)


def fail(event: Any, context: Any) -> None:
    raise ValueError("the handler failed on purpose")


def unserializable(event: Any, context: Any) -> object:
    return {"value": object()}


def slow(event: Any, context: Any) -> str:
    time.sleep(1.5)
    return "too late"


def sqs_partial(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Fails every message whose body starts with "poison", by reporting it."""
    failures = []
    with lock:
        for record in event["Records"]:
            sqs_deliveries.append(
                {
                    "body": record["body"],
                    "receive_count": int(record["attributes"]["ApproximateReceiveCount"]),
                    "record": record,
                }
            )
            if record["body"].startswith("poison"):
                failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}


def stream_consumer(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Records each invocation; fails records whose new image has ``fail`` set (see ``stream_mode``)."""
    records = event["Records"]
    with lock:
        stream_invocations.append([r["dynamodb"]["SequenceNumber"] for r in records])
        stream_records.extend(records)
        mode = stream_mode["mode"]
    failing = [r for r in records if "fail" in r["dynamodb"].get("NewImage", {})]
    if failing and mode == "error":
        raise RuntimeError("a record failed")
    if failing and mode == "partial":
        return {"batchItemFailures": [{"itemIdentifier": failing[0]["dynamodb"]["SequenceNumber"]}]}
    return {"batchItemFailures": []}


def api_echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """An API proxy function answering with the event it received."""
    query = event.get("queryStringParameters") or {}
    if query.get("crash"):
        raise RuntimeError("crash requested")
    if query.get("malformed"):
        return {"body": "no status code"}
    return {
        "statusCode": int(query.get("http_status", 200)),
        "headers": {"Content-Type": "application/json", "X-Echo": "1"},
        "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
        "body": json.dumps(event),
        "isBase64Encoded": False,
    }


SEED_CALLS: list[tuple[str, str, Any]] = []


def fake_projects_api(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Just enough of the API for seeding: create a project; list its "tasks" (its uploaded objects);
    answer the directory and membership calls (recorded in ``SEED_CALLS``)."""
    import boto3

    if event["path"].startswith("/users/") or event["path"] == "/projects/demo-1/members":
        SEED_CALLS.append((event["httpMethod"], event["path"], json.loads(event["body"] or "null")))
        return {"statusCode": 201 if event["httpMethod"] == "POST" else 200, "body": "{}"}
    if event["httpMethod"] == "POST" and event["path"] == "/projects":
        body = json.loads(event["body"])
        claims = event["requestContext"]["authorizer"]["claims"]
        project = {"project_id": "demo-1", "name": body["name"], "created_by": claims["email"]}
        return {"statusCode": 201, "body": json.dumps(project)}
    if event["httpMethod"] == "GET" and event["path"] == "/projects/demo-1/tasks":
        listed = boto3.client("s3").list_objects_v2(Bucket=settings().DATA_BUCKET, Prefix="projects/demo-1/")
        items = [{"task_id": o["Key"]} for o in listed.get("Contents", [])]
        return {"statusCode": 200, "body": json.dumps({"items": items})}
    return {"statusCode": 404, "body": json.dumps({"message": "not found"})}


_inside: dict[str, list[int]] = {}  # function name -> [running now, most at once]
_inside_lock = __import__("threading").Lock()


def overlap_probe(event: dict[str, Any], context: Any) -> dict[str, int]:
    """Records how many invocations of this function run at once."""
    import time

    name = context.function_name
    with _inside_lock:
        counts = _inside.setdefault(name, [0, 0])
        counts[0] += 1
        counts[1] = max(counts[1], counts[0])
    time.sleep(0.05)
    with _inside_lock:
        counts[0] -= 1
    return {"most": counts[1]}


def lister(event: Any, context: Any) -> int:
    """Makes ``event["n"]`` AWS requests (ListQueues), then burns a little CPU."""
    import boto3

    sqs = boto3.client("sqs")
    for _ in range(int(event["n"])):
        sqs.list_queues()
    return sum(i * i for i in range(200_000))


def scheduled(event: dict[str, Any], context: Any) -> dict[str, int]:
    """Records each scheduled run's event."""
    with lock:
        scheduled_events.append(event)
        return {"runs": len(scheduled_events)}
