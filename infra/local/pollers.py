"""The Lambda event-source-mapping service, played by background threads over moto's APIs.

moto 5.2.5 runs its event-source mappings synchronously inside the write that
feeds them, and not as AWS does (docs/decisions.md, 2026-11-28). These pollers
behave like the AWS service instead, through the same public APIs it uses:

**SQS** (:class:`SqsPoller`): long-polls ``ReceiveMessage``, gathers up to
``batch_size`` messages within the batching window, invokes the function
through ``lambda.invoke`` (so through moto and the in-process runtime), and
deletes only the messages that succeeded. With ``report_batch_item_failures``
the function's ``batchItemFailures`` name the failed messages; AWS's rules for a
malformed response apply (it fails the whole batch). A failed message is not
touched: it becomes visible again when its visibility timeout ends, and SQS's
redrive policy moves it to the DLQ after ``maxReceiveCount`` receives. At most
``max_concurrency`` batches are in flight.

**DynamoDB streams** (:class:`StreamPoller`): reads each shard in order with
``GetShardIterator``/``GetRecords`` from the trigger's starting position and
invokes the function with up to ``batch_size`` records. A failed batch blocks
its shard and is retried with exponential backoff: from the first failed record
when the function reports ``batchItemFailures`` (by sequence number), else split
in two when ``bisect_batch_on_error``, else whole. After ``retry_attempts``
retries its metadata (``DDBStreamBatchInfo``) goes to the on-failure queue and
the shard moves on.

**Schedules** (:class:`SchedulePoller`): every ``every_minutes``, as an EventBridge schedule
would, invokes the function with a ``Scheduled Event``; a run that fails is not retried (the
schedule's target has no retries), the next one comes at its time.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol

import boto3
from botocore.config import Config

from infra.local import patches
from infra.local.resources import LocalResources
from infra.spec import ScheduleTrigger, ServalSpec, SqsTrigger, StreamTrigger

log = logging.getLogger("serval.local.pollers")

# The record attributes Lambda passes through from SQS.
SQS_RECORD_ATTRIBUTES = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
    "AWSTraceHeader",
    "SequenceNumber",
    "MessageGroupId",
    "MessageDeduplicationId",
)
SQS_MAX_MESSAGES_PER_RECEIVE = 10


class Poller(Protocol):
    def start(self) -> None: ...

    def request_stop(self) -> None:
        """Take no new batch; what is in flight finishes (or fails) on its own."""

    def stop(self) -> None:
        """Request the stop and wait for what is in flight."""


def _json_default(value: object) -> object:
    if isinstance(value, bytes):  # binary attribute values travel base64-encoded, as in AWS events
        return base64.b64encode(value).decode()
    if isinstance(value, datetime):
        return int(value.timestamp())
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


@dataclass(frozen=True)
class Invocation:
    """The outcome of one synchronous invocation."""

    errored: bool
    payload: bytes


def _lambda_client(timeout_s: int) -> Any:
    # One attempt (the poller owns retries); wait as long as the function may run.
    return boto3.client(
        "lambda",
        config=Config(read_timeout=timeout_s + 30, connect_timeout=5, retries={"total_max_attempts": 1}),
    )


def invoke(client: Any, function_name: str, event: dict[str, Any]) -> Invocation:
    try:
        response = client.invoke(
            FunctionName=function_name,
            InvocationType="RequestResponse",
            Payload=json.dumps(event, default=_json_default).encode(),
        )
    except Exception as exc:  # the service failed to run it: like an invocation error
        log.warning("invoke %s failed: %s", function_name, exc)
        return Invocation(errored=True, payload=b"")
    payload = response["Payload"].read()
    errored = "FunctionError" in response
    if errored:
        log.warning("%s failed: %s", function_name, payload[:2000].decode(errors="replace"))
    return Invocation(errored=errored, payload=payload)


def batch_item_failures(payload: bytes, identifiers: Iterable[str]) -> set[str] | None:
    """The failed item ids of a partial-batch response; None when the whole batch counts as failed.

    AWS's rules: a null or empty response, or a null or empty ``batchItemFailures``
    list, is a complete success. Invalid JSON, or an entry without a known non-empty
    ``itemIdentifier``, is a complete failure.
    """
    try:
        response = json.loads(payload) if payload.strip() else None
    except ValueError:
        return None
    if response is None:
        return set()
    if not isinstance(response, dict):
        return None
    failures = response.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return None
    known = set(identifiers)
    failed = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(identifier, str) or identifier not in known:
            return None
        failed.add(identifier)
    return failed


# --------------------------------------------------------------------------- SQS


@dataclass(frozen=True)
class SqsSource:
    function_name: str
    function_timeout_s: int
    queue_url: str
    queue_arn: str
    batch_size: int
    max_concurrency: int
    batching_window_s: float
    report_batch_item_failures: bool
    region: str


def sqs_record(message: dict[str, Any], source: SqsSource) -> dict[str, Any]:
    """A message as Lambda's SQS event record carries it."""
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {k: v for k, v in message.get("Attributes", {}).items() if k in SQS_RECORD_ATTRIBUTES},
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": value.get("StringListValues", []),
                "binaryListValues": value.get("BinaryListValues", []),
                "dataType": value["DataType"],
            }
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": source.queue_arn,
        "awsRegion": source.region,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


class SqsPoller:
    def __init__(self, source: SqsSource, *, wait_time_s: int = 1) -> None:
        self.source = source
        self._wait_time_s = wait_time_s
        self._sqs = boto3.client("sqs")
        self._lambda = _lambda_client(source.function_timeout_s)
        self._stopping = threading.Event()
        self._slots = threading.Semaphore(source.max_concurrency)
        self._workers = ThreadPoolExecutor(
            source.max_concurrency, thread_name_prefix=f"sqs-{source.function_name}"
        )
        self._thread = threading.Thread(target=self._run, name=f"poll-{source.queue_arn}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def request_stop(self) -> None:
        self._stopping.set()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()
        self._workers.shutdown(wait=True)

    def _run(self) -> None:
        while not self._stopping.is_set():
            if not self._slots.acquire(timeout=0.2):
                continue
            try:
                messages = self._receive_batch()
            except Exception as exc:
                log.warning("receive from %s failed: %s", self.source.queue_url, exc)
                messages = []
                self._stopping.wait(1)
            if messages:
                self._workers.submit(self._process, messages)
            else:
                self._slots.release()

    def _receive(self, count: int, wait_s: int) -> list[dict[str, Any]]:
        response = self._sqs.receive_message(
            QueueUrl=self.source.queue_url,
            MaxNumberOfMessages=min(count, SQS_MAX_MESSAGES_PER_RECEIVE),
            WaitTimeSeconds=wait_s,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return [dict(m) for m in response.get("Messages", [])]

    def _receive_batch(self) -> list[dict[str, Any]]:
        batch = self._receive(self.source.batch_size, self._wait_time_s)
        window_ends = time.monotonic() + self.source.batching_window_s
        while batch and len(batch) < self.source.batch_size and time.monotonic() < window_ends:
            more = self._receive(self.source.batch_size - len(batch), 0)
            if more:
                batch += more
            elif self._stopping.wait(0.05):
                break
        return batch

    def _process(self, messages: list[dict[str, Any]]) -> None:
        try:
            self._deliver(messages)
        except Exception:
            log.exception("delivering a batch from %s failed", self.source.queue_url)
        finally:
            self._slots.release()

    def _deliver(self, messages: list[dict[str, Any]]) -> None:
        event = {"Records": [sqs_record(m, self.source) for m in messages]}
        result = invoke(self._lambda, self.source.function_name, event)
        if result.errored:
            return  # every message stays in flight until its visibility timeout ends
        failed: set[str] | None = set()
        if self.source.report_batch_item_failures:
            failed = batch_item_failures(result.payload, (m["MessageId"] for m in messages))
        if failed is None:
            log.warning("%s: invalid partial-batch response; the batch failed", self.source.function_name)
            return
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), SQS_MAX_MESSAGES_PER_RECEIVE):
            chunk = done[start : start + SQS_MAX_MESSAGES_PER_RECEIVE]
            self._sqs.delete_message_batch(
                QueueUrl=self.source.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )


# --------------------------------------------------------------------------- DynamoDB streams


@dataclass(frozen=True)
class StreamSource:
    function_name: str
    function_arn: str
    function_timeout_s: int
    stream_arn: str
    batch_size: int
    starting_position: str
    retry_attempts: int
    bisect_batch_on_error: bool
    report_batch_item_failures: bool
    on_failure_queue_url: str | None
    batching_window_s: float = 0.0


def stream_record(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A ``GetRecords`` record as Lambda's DynamoDB event record carries it."""
    return {**record, "eventSourceARN": stream_arn}


def _sequence(record: dict[str, Any]) -> str:
    return str(record["dynamodb"]["SequenceNumber"])


def _arrival(record: dict[str, Any]) -> str:
    created = record["dynamodb"].get("ApproximateCreationDateTime")
    moment = created if isinstance(created, datetime) else datetime.now(UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


Observer = Callable[[list[dict[str, Any]]], None]


class StreamPoller:
    def __init__(
        self,
        source: StreamSource,
        *,
        poll_interval_s: float = 0.25,
        idle_poll_max_s: float = 2.0,
        retry_base_s: float = 0.5,
        retry_max_s: float = 10.0,
        observe: Observer | None = None,
    ) -> None:
        self.source = source
        self._observe = observe  # sees every batch read, once (the local console's activity)
        # Polls slow down while the stream is idle: every moto GetRecords call keeps a new iterator.
        self._poll_interval_s = poll_interval_s
        self._idle_poll_max_s = max(idle_poll_max_s, poll_interval_s)
        self._backoff: Callable[[int], float] = lambda n: min(retry_max_s, retry_base_s * 2 ** (n - 1))
        self._streams = boto3.client("dynamodbstreams")
        self._sqs = boto3.client("sqs")
        self._lambda = _lambda_client(source.function_timeout_s)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"poll-{source.stream_arn}", daemon=True)

    def start(self) -> None:
        patches.register_stream_consumer(self.source.stream_arn, self.source.function_name)
        self._thread.start()

    def request_stop(self) -> None:
        self._stopping.set()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()
        patches.unregister_stream_consumer(self.source.stream_arn, self.source.function_name)

    def _run(self) -> None:
        try:
            iterators = self._open_iterators()
        except Exception:
            log.exception("cannot read the stream %s; its function gets no records", self.source.stream_arn)
            return
        interval = self._poll_interval_s
        while not self._stopping.is_set():
            idle = True
            for shard_id, iterator in list(iterators.items()):
                try:
                    response = self._streams.get_records(ShardIterator=iterator, Limit=self.source.batch_size)
                except Exception as exc:
                    log.warning("GetRecords on %s failed: %s", self.source.stream_arn, exc)
                    continue
                iterators[shard_id] = response["NextShardIterator"]
                records = [stream_record(r, self.source.stream_arn) for r in response.get("Records", [])]
                if records:
                    records += self._gather(shard_id, iterators, self.source.batch_size - len(records))
                    idle = False
                    self._show(records)
                    if self._deliver(shard_id, records):  # processed (or given up): moto may drop them
                        patches.stream_consumed(
                            self.source.stream_arn, self.source.function_name, int(_sequence(records[-1]))
                        )
            if idle:
                self._stopping.wait(interval)
                interval = min(interval * 2, self._idle_poll_max_s)
            else:
                interval = self._poll_interval_s

    def _show(self, records: list[dict[str, Any]]) -> None:
        if self._observe is None:
            return
        try:
            self._observe(records)
        except Exception:  # what the console says never stops the stream
            log.exception("observing records of %s failed", self.source.stream_arn)

    def _gather(self, shard_id: str, iterators: dict[str, str], room: int) -> list[dict[str, Any]]:
        """More records of a shard, for up to the batching window (as Lambda's
        MaximumBatchingWindowInSeconds): until the batch is full or the window ends."""
        gathered: list[dict[str, Any]] = []
        window_ends = time.monotonic() + self.source.batching_window_s
        while len(gathered) < room and time.monotonic() < window_ends:
            try:
                response = self._streams.get_records(
                    ShardIterator=iterators[shard_id], Limit=room - len(gathered)
                )
            except Exception as exc:
                log.warning("GetRecords on %s failed: %s", self.source.stream_arn, exc)
                break
            iterators[shard_id] = response["NextShardIterator"]
            more = [stream_record(r, self.source.stream_arn) for r in response.get("Records", [])]
            gathered += more
            if not more and self._stopping.wait(0.25):  # Lambda polls a shard 4 times a second
                break
        return gathered

    def _open_iterators(self) -> dict[str, str]:
        description = self._streams.describe_stream(StreamArn=self.source.stream_arn)["StreamDescription"]
        return {
            shard["ShardId"]: self._streams.get_shard_iterator(
                StreamArn=self.source.stream_arn,
                ShardId=shard["ShardId"],
                ShardIteratorType=self.source.starting_position,
            )["ShardIterator"]
            for shard in description.get("Shards", [])
        }

    def _deliver(self, shard_id: str, records: list[dict[str, Any]]) -> bool:
        """Deliver records in order; a failing batch blocks the shard until it succeeds or is given up.
        False when stopping interrupted it."""
        pending: deque[list[dict[str, Any]]] = deque([records])
        retries = 0
        while pending and not self._stopping.is_set():
            batch = pending[0]
            result = invoke(self._lambda, self.source.function_name, {"Records": batch})
            failed = self._failed_from(batch, result)
            if failed is None:
                pending.popleft()
                retries = 0
                continue
            if failed > 0:  # the function processed the records before the first failed one
                pending[0] = batch[failed:]
            elif result.errored and self.source.bisect_batch_on_error and len(batch) > 1:
                half = len(batch) // 2
                pending.popleft()
                pending.extendleft([batch[half:], batch[:half]])
            retries += 1
            if retries > self.source.retry_attempts:
                self._give_up(shard_id, pending.popleft(), result, retries)
                retries = 0
            else:
                self._stopping.wait(self._backoff(retries))
        return not pending

    def _failed_from(self, batch: list[dict[str, Any]], result: Invocation) -> int | None:
        """None if the batch succeeded, else the position of the first record to retry."""
        if result.errored:
            return 0
        if not self.source.report_batch_item_failures:
            return None
        failed = batch_item_failures(result.payload, (_sequence(r) for r in batch))
        if failed is None:
            return 0
        positions = [i for i, r in enumerate(batch) if _sequence(r) in failed]
        return min(positions) if positions else None

    def _give_up(self, shard_id: str, batch: list[dict[str, Any]], result: Invocation, attempts: int) -> None:
        log.error(
            "%s: giving up on %d stream records %s..%s after %d attempts",
            self.source.function_name,
            len(batch),
            _sequence(batch[0]),
            _sequence(batch[-1]),
            attempts,
        )
        if self.source.on_failure_queue_url is None:
            return
        response_context: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
        if result.errored:
            response_context["functionError"] = "Unhandled"
        record = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": self.source.function_arn,
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": attempts,
            },
            "responseContext": response_context,
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "DDBStreamBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": _sequence(batch[0]),
                "endSequenceNumber": _sequence(batch[-1]),
                "approximateArrivalOfFirstRecord": _arrival(batch[0]),
                "approximateArrivalOfLastRecord": _arrival(batch[-1]),
                "batchSize": len(batch),
                "streamArn": self.source.stream_arn,
            },
        }
        self._sqs.send_message(QueueUrl=self.source.on_failure_queue_url, MessageBody=json.dumps(record))


# --------------------------------------------------------------------------- schedules


def scheduled_event(schedule_arn: str, region: str, account_id: str) -> dict[str, Any]:
    """The event an EventBridge schedule gives its Lambda target."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account_id,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [schedule_arn],
        "detail": {},
    }


STOP_WAIT_S = 5.0  # how long a stop waits for a scheduled run in flight


@dataclass(frozen=True)
class ScheduleSource:
    function_name: str
    function_timeout_s: int
    interval_s: float
    schedule_arn: str
    region: str
    account_id: str


class SchedulePoller:
    """Invokes a function every ``interval_s`` (its schedule's rate), the first time one interval
    after the start; one run at a time, as a rate schedule whose runs end within their interval."""

    def __init__(self, source: ScheduleSource) -> None:
        self.source = source
        self._lambda = _lambda_client(source.function_timeout_s)
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"schedule-{source.function_name}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def request_stop(self) -> None:
        self._stopping.set()

    def stop(self) -> None:
        """Take no new run; a run in flight is not waited for long: every repair it makes is
        conditional on what it read, so one cut short is the next run's work."""
        self._stopping.set()
        self._thread.join(timeout=STOP_WAIT_S)

    def _run(self) -> None:
        source = self.source
        while not self._stopping.wait(source.interval_s):
            event = scheduled_event(source.schedule_arn, source.region, source.account_id)
            invoke(self._lambda, source.function_name, event)


# --------------------------------------------------------------------------- wiring from the spec


def function_arn(resources: LocalResources, name: str) -> str:
    return f"arn:aws:lambda:{resources.region}:{resources.account_id}:function:{name}"


def pollers_for(
    spec: ServalSpec,
    resources: LocalResources,
    *,
    observe: Callable[[str, list[dict[str, Any]]], None] | None = None,
    **options: Any,
) -> list[Poller]:
    """One poller per function trigger of the spec (API triggers have none). ``observe`` sees
    every table's stream records once, with the table's id (from the first poller of its stream)."""
    pollers: list[Poller] = []
    observed: set[str] = set()
    for fn in spec.functions.values():
        trigger = fn.trigger
        if isinstance(trigger, SqsTrigger):
            source = SqsSource(
                function_name=fn.name,
                function_timeout_s=fn.timeout_s,
                queue_url=resources.queue_urls[trigger.queue],
                queue_arn=resources.queue_arns[trigger.queue],
                batch_size=trigger.batch_size,
                max_concurrency=trigger.max_concurrency,
                batching_window_s=trigger.max_batching_window_s,
                report_batch_item_failures=trigger.report_batch_item_failures,
                region=resources.region,
            )
            pollers.append(SqsPoller(source, **options.get("sqs", {})))
        elif isinstance(trigger, StreamTrigger):
            on_failure = trigger.on_failure_queue
            stream_source = StreamSource(
                function_name=fn.name,
                function_arn=function_arn(resources, fn.name),
                function_timeout_s=fn.timeout_s,
                stream_arn=resources.stream_arns[trigger.table],
                batch_size=trigger.batch_size,
                starting_position=trigger.starting_position,
                retry_attempts=trigger.retry_attempts,
                bisect_batch_on_error=trigger.bisect_batch_on_error,
                report_batch_item_failures=trigger.report_batch_item_failures,
                batching_window_s=trigger.max_batching_window_s,
                on_failure_queue_url=resources.queue_urls[on_failure] if on_failure else None,
            )
            watcher: Observer | None = None
            if observe is not None and trigger.table not in observed:
                observed.add(trigger.table)
                watcher = partial(observe, trigger.table)
            pollers.append(StreamPoller(stream_source, observe=watcher, **options.get("stream", {})))
        elif isinstance(trigger, ScheduleTrigger):
            arn = f"arn:aws:scheduler:{resources.region}:{resources.account_id}:schedule/default/{fn.name}-schedule"
            schedule_source = ScheduleSource(
                function_name=fn.name,
                function_timeout_s=fn.timeout_s,
                interval_s=options.get("schedule", {}).get("interval_s", trigger.every_minutes * 60),
                schedule_arn=arn,
                region=resources.region,
                account_id=resources.account_id,
            )
            pollers.append(SchedulePoller(schedule_source))
    return pollers
