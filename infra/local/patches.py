"""The few places where the local stack changes moto 5.2.5, each small and reversible.

1. **Lambda without Docker.** ``LambdaFunction._invoke_lambda`` runs the real
   handler: in a warm worker process of the function when a process runtime is in use
   (:mod:`infra.local.workers`, what the local stack runs), else in this process
   (:mod:`infra.local.lambda_runtime`, for in-process tests).
2. **DynamoDB Query.** ``Table.query`` reads one partition, in order, from a
   sorted index (:mod:`infra.local.ddb_index`); the write paths keep the index
   current (``Table.put_item``, ``Table.delete_item``, ``DynamoDBBackend.update_item``).
3. **DynamoDB TransactWriteItems.** moto snapshots every table a transaction
   touches with ``copy.deepcopy`` (2.6 s at 100k items) to roll back a cancelled
   one. The patch journals the before-image of the items the transaction names
   and restores those instead; the result is the same.
4. **DynamoDB atomicity.** moto's server handles requests on many threads with
   no lock, so two conditional writes could both pass their condition. DynamoDB
   and DynamoDB Streams requests are serialized, as each item's writes are in AWS.
5. **Fast DynamoDB responses.** Reads whose results moto holds in wire form are
   serialized with a plain ``json.dumps``.
6. **DynamoDB size limits** (:func:`install_limits`, also installed alone by the
   in-process test fixture). moto does not refuse a TransactWriteItems over 4 MB, and
   its BatchWriteItem writes the items before an oversize one and then fails; AWS
   refuses both requests whole with a ValidationException. The patch checks the
   request first, as AWS does, with moto's own size rules.

7. **Stream retention.** moto keeps every stream record and every shard iterator forever.
   Records are dropped once every registered consumer (the local pollers) has processed them,
   and after 24 h as in AWS; iterators expire 15 minutes after they were handed out, as in AWS.
   Sequence numbers go on where they were (``StreamShard.add``/``get`` and
   ``ShardIterator.__init__`` count the dropped records).

8. **moto's request path.** The server's dispatcher finds each request's backend under one
   global lock by listing moto's package folder from disk; the answer per host is cached. SQS's
   ``Queue.attributes`` counts every message of the queue to answer any one attribute (each
   ``SendMessage`` asks for one), so attributes are computed when read; its ``DeleteMessage``
   scans every message of the queue, twice, building a list per message, to find the one with
   the receipt handle (17 ms of a receive-and-delete of 10 at a backlog of 10k, which still costs
   95 ms in moto's receive): handles are indexed as they are handed out. Step Functions parses
   the state machine's definition with ANTLR at every execution and builds a new boto3 client
   for every Lambda step, and jsonpath_ng builds a new parser for every path it evaluates (in
   each step and for each event target); the programs, clients and parsed paths are reused, and
   so are parsed DynamoDB update expressions (their users read them or validate a copy, which
   is made by unpickling the tree's pickle rather than by ``copy.deepcopy``).

9. **Cognito ``auth_time``.** moto stamps every token it signs with ``auth_time`` = now, so the
   ID token of a refresh claims a new sign-in; Cognito keeps the time the user signed in, and
   oidc-client-ts refuses a refreshed ID token whose ``auth_time`` changed. Tokens of one
   sign-in (one ``origin_jti``) keep its ``auth_time``.

10. **Step Functions StopExecution.** moto marks a stopped execution's program stopped, but a
    step waiting for a task token keeps waiting, so the execution stays ``RUNNING``; when woken,
    its wait ends as a timeout that overwrites the stop (``FAILED``, ``States.Timeout``). In AWS
    the execution is ``ABORTED`` at once. A stop wakes the execution's waits, and a stopped
    program stays stopped.

Every hooked moto internal is checked before it is replaced: a moto upgrade that
renames or reshapes one fails loudly in :func:`install`, not silently later.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import datetime
import decimal
import functools
import inspect
import json
import os
import pickle
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Protocol, cast

from jsonpath_ng import ext as jsonpath_ext
from moto.awslambda.models import LambdaFunction
from moto.cognitoidp.models import CognitoIdpUserPool
from moto.core.models import botocore_stubber
from moto.core.responses import ActionResult, BaseResponse
from moto.core.utils import camelcase_to_underscores
from moto.dynamodb.exceptions import ItemSizeTooLarge, MockValidationException
from moto.dynamodb.models import DynamoDBBackend, dynamodb_backends
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import StreamRecord, StreamShard, Table
from moto.dynamodb.parsing import validators as ddb_validators
from moto.dynamodb.parsing.expressions import UpdateExpressionParser  # type: ignore[attr-defined]
from moto.dynamodb.responses import DynamoHandler
from moto.dynamodbstreams.models import DynamoDBStreamsBackend, ShardIterator
from moto.dynamodbstreams.responses import DynamoDBStreamsHandler
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.sqs.exceptions import ReceiptHandleIsInvalid
from moto.sqs.models import Message, Queue
from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.asl.eval.environment import Environment as SfnEnvironment
from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.asl.utils import json_path as sfn_json_path

from infra.local import ddb_index, lambda_runtime

MOTO_VERSION = "5.2.5"


class MotoInternalsChanged(RuntimeError):
    """A moto internal the local stack hooks is not what it was written against."""


# The hooked callables and the parameters they must have (after ``self``).
EXPECTED_SIGNATURES: dict[tuple[type, str], tuple[str, ...]] = {
    (LambdaFunction, "_invoke_lambda"): ("event",),
    (Table, "query"): (
        "hash_key",
        "range_comparison",
        "range_objs",
        "limit",
        "exclusive_start_key",
        "scan_index_forward",
        "projection_expressions",
        "index_name",
        "consistent_read",
        "filter_expression",
        "hash_key_conditions",
        "range_key_conditions",
        "filter_kwargs",
    ),
    (Table, "put_item"): (
        "item_attrs",
        "expected",
        "condition_expression",
        "expression_attribute_names",
        "expression_attribute_values",
        "overwrite",
        "return_values_on_condition_check_failure",
    ),
    (Table, "delete_item"): ("hash_key", "range_key"),
    (Table, "get_item"): ("hash_key", "range_key", "projection_expression"),
    (Table, "_get_last_evaluated_key"): ("last_result", "index_name"),
    (Table, "get_index"): ("index_name", "error_if_not"),
    (DynamoDBBackend, "update_item"): (
        "table_name",
        "key",
        "update_expression",
        "expression_attribute_names",
        "expression_attribute_values",
        "attribute_updates",
        "expected",
        "condition_expression",
        "return_values_on_condition_check_failure",
    ),
    (DynamoDBBackend, "transact_write_items"): ("transact_items",),
    (DynamoDBBackend, "get_table"): ("table_name",),
    (StreamShard, "add"): ("old", "new"),
    (StreamShard, "get"): ("start", "quantity"),
    (ShardIterator, "__init__"): (
        "streams_backend",
        "stream_shard",
        "shard_iterator_type",
        "sequence_number",
    ),
    (DynamoDBStreamsBackend, "get_records"): ("iterator_arn", "limit"),
    (BaseResponse, "call_action"): (),
    (BaseResponse, "serialized"): ("action_result",),
    (DynamoHandler, "transact_write_items"): (),
    (DynamoHandler, "batch_write_item"): (),
    (DomainDispatcherApplication, "get_backend_for_host"): ("host",),
    (Message, "mark_received"): ("visibility_timeout",),
    (Queue, "delete_message"): ("receipt_handle",),
    (CognitoIdpUserPool, "create_jwt"): ("client_id", "username", "token_use", "expires_in", "extra_data"),
    (SfnEnvironment, "set_stop"): ("stop_date", "cause", "error"),
    (SfnEnvironment, "set_error"): ("error",),
}


def check_moto_internals() -> None:
    """Raise :class:`MotoInternalsChanged` unless every hooked internal looks as expected."""
    problems = []
    for (owner, name), expected in EXPECTED_SIGNATURES.items():
        function = _original(owner, name)
        if not callable(function):
            problems.append(f"{owner.__qualname__}.{name} is missing")
            continue
        params = tuple(inspect.signature(function).parameters)[1:]
        if params != expected:
            problems.append(f"{owner.__qualname__}.{name}{params} != {expected}")
    if not _state.installed:
        if not isinstance(vars(Queue).get("attributes"), property) or not all(
            isinstance(getattr(Queue, n, None), list)
            for n in ("BASE_ATTRIBUTES", "FIFO_ATTRIBUTES", "KMS_ATTRIBUTES")
        ):
            problems.append("sqs Queue.attributes is no longer the property built from *_ATTRIBUTES")
        for function, params in (
            (AmazonStateLanguageParser.parse, ("definition",)),
            (lambda_eval_utils.boto_client_for, ("region", "service", "state_credentials")),
            (UpdateExpressionParser.make, ("expression_str",)),
        ):
            if tuple(inspect.signature(function).parameters) != params:
                problems.append(f"{function.__qualname__} no longer takes {params}")
    if "__deepcopy__" in vars(Table) and not _state.installed:
        problems.append("Table now defines __deepcopy__ itself")
    if problems:
        raise MotoInternalsChanged(
            f"moto internals hooked by infra/local/patches.py changed (written for moto {MOTO_VERSION}): "
            + "; ".join(problems)
        )


# --------------------------------------------------------------------------- patch bookkeeping

_MISSING = object()


@dataclass
class _State:
    installed: bool = False
    generation: int = 0  # bumped on every install: indexes built before are stale
    limits: bool = False  # install() installed the size limits (so uninstall() removes them)
    saved: dict[tuple[type | ModuleType, str], Any] = field(default_factory=dict)
    runtime: LambdaRuntime | None = None  # None: run handlers in this process


class LambdaRuntime(Protocol):
    def invoke(self, fn: LambdaFunction, event: Any) -> tuple[str, bool, str]: ...


_state = _State()
_limits = _State()  # the size limits: installed with the others, or alone
_local = threading.local()  # moto_semantics() and the transaction in progress, per thread
_dynamodb_lock = threading.RLock()


def _original(owner: type | ModuleType, name: str) -> Any:
    """What ``owner.name`` was before :func:`install` (what it is, when not installed)."""
    saved = next((s.saved for s in (_state, _limits) if (owner, name) in s.saved), None)
    if saved is None:
        return getattr(owner, name, None)
    previous = saved[(owner, name)]
    return getattr(owner.__mro__[1], name, None) if previous is _MISSING else previous


def _replace(owner: type | ModuleType, name: str, replacement: Any, state: _State = _state) -> None:
    state.saved[(owner, name)] = owner.__dict__.get(name, _MISSING)
    setattr(owner, name, replacement)


def _restore_all(state: _State = _state) -> None:
    for (owner, name), previous in state.saved.items():
        if previous is _MISSING:
            delattr(owner, name)
        else:
            setattr(owner, name, previous)
    state.saved.clear()


def _call_original(owner: type | ModuleType, name: str, *args: Any, **kwargs: Any) -> Any:
    return _original(owner, name)(*args, **kwargs)


def _moto_semantics_active() -> bool:
    return bool(getattr(_local, "moto_semantics", False))


@contextmanager
def moto_semantics() -> Iterator[None]:
    """Run moto's own Query and TransactWriteItems in this thread (the patches stay installed).

    For the equivalence tests and the benchmark, which compare the two.
    """
    previous = _moto_semantics_active()
    _local.moto_semantics = True
    try:
        yield
    finally:
        _local.moto_semantics = previous


# --------------------------------------------------------------------------- 1. Lambda


def _invoke_lambda(self: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
    runtime = _state.runtime
    return lambda_runtime.invoke(self, event) if runtime is None else runtime.invoke(self, event)


def current_runtime() -> LambdaRuntime | None:
    """The runtime invocations run in (None: in this process)."""
    return _state.runtime


def use_runtime(runtime: LambdaRuntime | None) -> None:
    """Run invocations with ``runtime`` (a :class:`infra.local.workers.ProcessRuntime`), or in-process."""
    _state.runtime = runtime


# --------------------------------------------------------------------------- 2. Query and its index


def _query(self: Table, *args: Any, **kwargs: Any) -> Any:
    if not _moto_semantics_active():
        result = ddb_index.indexed_query(self, _state.generation, *args, **kwargs)
        if result is not None:
            return result
    return _call_original(Table, "query", self, *args, **kwargs)


def _put_item(self: Table, *args: Any, **kwargs: Any) -> Item:
    item: Item = _call_original(Table, "put_item", self, *args, **kwargs)
    ddb_index.sync_key(self, _state.generation, item.hash_key, item.range_key)
    return item


def _delete_item(self: Table, hash_key: DynamoType, range_key: DynamoType | None) -> Item | None:
    try:
        return _call_original(Table, "delete_item", self, hash_key, range_key)
    finally:
        ddb_index.sync_key(self, _state.generation, hash_key, range_key)


def _table_key(table: Table, key: dict[str, Any]) -> tuple[DynamoType, DynamoType | None]:
    hash_key = DynamoType(key[table.hash_key_attr])
    range_attr = table.range_key_attr
    return hash_key, (DynamoType(key[range_attr]) if range_attr is not None else None)


def _update_item(
    self: DynamoDBBackend, table_name: str, key: dict[str, Any], *args: Any, **kwargs: Any
) -> Item:
    # moto updates the stored item in place, so the index is told afterwards, whatever happened.
    try:
        return _call_original(DynamoDBBackend, "update_item", self, table_name, key, *args, **kwargs)
    finally:
        try:
            table = self.get_table(table_name)
            ddb_index.sync_key(table, _state.generation, *_table_key(table, key))
        except Exception:
            pass


# --------------------------------------------------------------------------- 3. TransactWriteItems


@dataclass
class _Journal:
    """Before-images of the items a transaction names, and each table's stream length."""

    images: list[tuple[Table, DynamoType, DynamoType | None, Item | None]] = field(default_factory=list)
    stream_lengths: dict[int, tuple[StreamShard, int]] = field(default_factory=dict)

    @classmethod
    def capture(cls, backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> _Journal:
        journal = cls()
        for entry in transact_items:
            op_type, op = next(iter(entry.items()))
            table = backend.get_table(op["TableName"])
            key = op["Item"] if op_type == "Put" else op["Key"]
            hash_key, range_key = _table_key(table, key)
            before = copy.deepcopy(table.get_item(hash_key, range_key))
            journal.images.append((table, hash_key, range_key, before))
            if table.stream_shard is not None:
                journal.stream_lengths[id(table)] = (table.stream_shard, len(table.stream_shard.items))
        return journal

    def rollback(self) -> None:
        for table, hash_key, range_key, before in reversed(self.images):
            if range_key is None:
                if before is None:
                    table.items.pop(hash_key, None)
                else:
                    table.items[hash_key] = before  # type: ignore[assignment]
            elif before is None:
                table.items[hash_key].pop(range_key, None)
            else:
                table.items[hash_key][range_key] = before
            ddb_index.sync_key(table, _state.generation, hash_key, range_key)
        for shard, length in self.stream_lengths.values():
            del shard.items[length:]  # the cancelled transaction's stream records


def _transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    if _moto_semantics_active():
        return _call_original(DynamoDBBackend, "transact_write_items", self, transact_items)
    try:
        journal = _Journal.capture(self, transact_items)
    except Exception:  # malformed: moto validates and answers it
        return _call_original(DynamoDBBackend, "transact_write_items", self, transact_items)
    _local.transaction = True  # moto's "deepcopy(table)" snapshots become free (see _table_deepcopy)
    try:
        _call_original(DynamoDBBackend, "transact_write_items", self, transact_items)
    except BaseException:
        journal.rollback()
        raise
    finally:
        _local.transaction = False


def _table_deepcopy(self: Table, memo: dict[int, Any]) -> Table:
    """A transaction's snapshot is the table itself (the journal restores it); else a real deep copy."""
    if getattr(_local, "transaction", False):
        return self
    clone = cast(Table, self.__class__.__new__(self.__class__))
    memo[id(self)] = clone
    for name, value in self.__dict__.items():
        setattr(clone, name, copy.deepcopy(value, memo))
    return clone


# --------------------------------------------------------------------------- 4. one DynamoDB request at a time


def _serialized(call_action: Callable[[BaseResponse], Any]) -> Callable[[BaseResponse], Any]:
    def call(self: BaseResponse) -> Any:
        with _dynamodb_lock:
            return call_action(self)

    return call


# --------------------------------------------------------------------------- 5. fast DynamoDB responses

# Read operations whose results moto already holds in the JSON wire format (attribute values as
# {"S": ...}, counts, keys): a plain json.dumps gives the bytes moto's shape-driven serializer
# gives, at a fraction of its cost (~1 ms per returned item). tests/integration/local checks
# the two agree.
FAST_ACTIONS: dict[type, frozenset[str]] = {
    DynamoHandler: frozenset({"Query", "Scan", "GetItem", "BatchGetItem", "TransactGetItems"}),
    DynamoDBStreamsHandler: frozenset({"GetRecords"}),
}


def _fast_serialized(handler: type) -> Callable[[BaseResponse, ActionResult], Any]:
    def serialized(self: BaseResponse, action_result: ActionResult) -> Any:
        result = action_result.result
        if (
            _moto_semantics_active()
            or isinstance(result, BaseException)
            or self._get_action() not in FAST_ACTIONS[handler]
        ):
            return _call_original(handler, "serialized", self, action_result)
        headers = {"Content-Type": "application/x-amz-json-1.0", **self.response_headers}
        return 200, headers, json.dumps(result, separators=(",", ":"), default=_json_default)

    return serialized


_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime.datetime):  # timestamps travel as epoch seconds (moto's are naive UTC)
        moment = value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
        millis = (moment - _EPOCH) // datetime.timedelta(milliseconds=1)  # AWS sends milliseconds
        return millis / 1000
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()  # binary attribute values travel as base64
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


# --------------------------------------------------------------------------- 7. stream retention

STREAM_RETENTION = datetime.timedelta(hours=24)  # DynamoDB Streams keeps records 24 h
ITERATOR_TTL_S = 15 * 60  # a shard iterator expires 15 minutes after it is returned
ITERATOR_SWEEP_S = 60.0  # how often expired iterators are looked for


@dataclass
class _Retention:
    # stream ARN -> consumer -> the last sequence number it has processed (0: none yet)
    consumed: dict[str, dict[str, int]] = field(default_factory=dict)
    next_sweep: float = 0.0


_retention = _Retention()


def _trimmed(shard: StreamShard) -> int:
    return int(shard.__dict__.get("trimmed", 0))


def _stream_add(self: StreamShard, old: Item | None, new: Item | None) -> None:
    # moto's add, with sequence numbers that go on after dropped records
    stream_type = self.table.stream_specification["StreamViewType"]  # type: ignore[index]
    event_name = "INSERT" if old is None else "REMOVE" if new is None else "MODIFY"
    sequence = self.starting_sequence_number + _trimmed(self) + len(self.items)
    self.items.append(StreamRecord(self.table, stream_type, event_name, old, new, sequence))
    from moto.awslambda.utils import get_backend

    result = None
    for arn, mapping in self.table.lambda_event_source_mappings.items():
        result = get_backend(self.account_id, arn.split(":")[3]).send_dynamodb_items(
            arn, self.items, mapping.event_source_arn
        )
    if result:  # moto's own event-source mapping consumed them
        _drop_records(self, len(self.items))


def _stream_get(self: StreamShard, start: int, quantity: int) -> list[dict[str, Any]]:
    # A position before the oldest record kept (TRIM_HORIZON, or records already dropped) reads
    # from the oldest record kept.
    first = max(0, start - self.starting_sequence_number - _trimmed(self))
    return [record.to_json() for record in self.items[first : first + quantity]]


def _shard_iterator_init(
    self: ShardIterator,
    streams_backend: DynamoDBStreamsBackend,
    stream_shard: StreamShard,
    shard_iterator_type: str,
    sequence_number: int | None = None,
) -> None:
    _call_original(
        ShardIterator, "__init__", self, streams_backend, stream_shard, shard_iterator_type, sequence_number
    )
    if shard_iterator_type == "LATEST":
        self.sequence_number += _trimmed(stream_shard)
    self.__dict__["handed_out"] = time.monotonic()


def _get_records(self: DynamoDBStreamsBackend, iterator_arn: str, limit: int) -> dict[str, Any]:
    result = _call_original(DynamoDBStreamsBackend, "get_records", self, iterator_arn, limit)
    now = time.monotonic()
    if now >= _retention.next_sweep:
        _retention.next_sweep = now + ITERATOR_SWEEP_S
        expired = [
            arn
            for arn, iterator in self.shard_iterators.items()
            if now - float(iterator.__dict__.get("handed_out", now)) > ITERATOR_TTL_S
        ]
        for arn in expired:
            del self.shard_iterators[arn]
    return cast(dict[str, Any], result)


def _drop_records(shard: StreamShard, count: int) -> None:
    if count > 0:
        del shard.items[:count]
        shard.__dict__["trimmed"] = _trimmed(shard) + count


def _shard_of(stream_arn: str) -> StreamShard | None:
    # arn:aws:dynamodb:<region>:<account>:table/<name>/stream/<label>
    parts = stream_arn.split(":")
    table_name = parts[5].split("/")[1]
    backend = dynamodb_backends[parts[4]][parts[3]]
    table = backend.tables.get(table_name)
    return None if table is None else table.stream_shard


def register_stream_consumer(stream_arn: str, consumer: str) -> None:
    """``consumer`` reads ``stream_arn``: records are kept until it has processed them (or 24 h)."""
    with _dynamodb_lock:
        _retention.consumed.setdefault(stream_arn, {})[consumer] = 0


def unregister_stream_consumer(stream_arn: str, consumer: str) -> None:
    with _dynamodb_lock:
        _retention.consumed.get(stream_arn, {}).pop(consumer, None)


def stream_consumed(stream_arn: str, consumer: str, sequence_number: int) -> int:
    """Record that ``consumer`` processed the stream up to ``sequence_number``; drop what every
    consumer has processed and what is older than 24 h. Returns how many records were dropped."""
    with _dynamodb_lock:
        consumers = _retention.consumed.setdefault(stream_arn, {})
        consumers[consumer] = max(consumers.get(consumer, 0), sequence_number)
        shard = _shard_of(stream_arn) if _state.installed else None  # unpatched moto can't renumber
        if shard is None:
            return 0
        offset = shard.starting_sequence_number + _trimmed(shard)
        read_by_all = min(consumers.values()) - offset + 1
        cutoff = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - STREAM_RETENTION
        expired = 0
        while (
            expired < len(shard.items)
            and shard.items[expired].record["dynamodb"]["ApproximateCreationDateTime"] < cutoff
        ):
            expired += 1
        dropped = max(0, min(len(shard.items), max(read_by_all, expired)))
        _drop_records(shard, dropped)
        return dropped


# --------------------------------------------------------------------------- 8. moto's request path


def _backend_for_host(self: DomainDispatcherApplication, host: str | None) -> Any:
    """``get_backend_for_host``, answered once per host (it lists moto's folder from disk)."""
    cache: dict[str | None, Any] = self.__dict__.setdefault("_serval_backends", {})
    if host not in cache:
        cache[host] = _call_original(DomainDispatcherApplication, "get_backend_for_host", self, host)
    return cache[host]


class _QueueAttributes(Mapping[str, Any]):
    """``Queue.attributes`` as moto builds it, each value computed only when it is read.

    moto's property computes all of them, and the message counts walk every message of the
    queue, for each ``SendMessage`` (which asks only whether deduplication is content-based).
    """

    def __init__(self, queue: Queue) -> None:
        self._queue = queue
        names = list(Queue.BASE_ATTRIBUTES)  # Policy and RedrivePolicy among them
        if queue.fifo_queue:
            names += Queue.FIFO_ATTRIBUTES
        if queue.kms_master_key_id:  # type: ignore[attr-defined]
            names += Queue.KMS_ATTRIBUTES
        self._names = dict.fromkeys(names)

    def __getitem__(self, name: str) -> Any:
        if name not in self._names:
            raise KeyError(name)
        value = getattr(self._queue, camelcase_to_underscores(name))
        if name == "RedrivePolicy" and value:
            return json.dumps(value)
        return str(value).lower() if isinstance(value, bool) else value

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def _queue_attributes(self: Queue) -> Mapping[str, Any]:
    return _QueueAttributes(self)


_messages_by_handle: weakref.WeakValueDictionary[str, Message] = weakref.WeakValueDictionary()


def _mark_received(self: Message, visibility_timeout: int | None = None) -> None:
    _call_original(Message, "mark_received", self, visibility_timeout)
    _messages_by_handle[str(self.receipt_handle)] = self  # every handle it ever had stays valid


def _delete_message(self: Queue, receipt_handle: str) -> None:
    """moto's ``Queue.delete_message``, with the message found through the handle index."""
    if receipt_handle in self.deleted_messages:
        return  # deleted already: AWS accepts it again
    message = _messages_by_handle.get(receipt_handle)
    if message is None or message not in self._messages:  # identity: a C-level scan
        raise ReceiptHandleIsInvalid()
    self._messages.remove(message)
    self.pending_messages.discard(message)
    self.deleted_messages.update(message.all_receipt_handles)  # type: ignore[arg-type]


_asl_programs: dict[str, tuple[Any, Any]] = {}  # definition -> (program, tree): a handful
_sfn_clients: dict[tuple[str, str, str, bool], Any] = {}
_sfn_clients_lock = threading.Lock()


def _parse_asl(definition: str) -> tuple[Any, Any]:
    """``AmazonStateLanguageParser.parse``, once per definition.

    The evaluation components are immutable descriptions of the states (an execution's
    progress lives in its ``Environment``), so every execution of a state machine can share
    them, as the reference implementation's components are designed to be. Building them
    (ANTLR lexing, parsing and the preprocessor's visit) was most of the cost of starting
    an execution. Each component's lazily drawn heap key is drawn here, before the program is
    shared, so two threads never draw different ones.
    """
    parsed = _asl_programs.get(definition)
    if parsed is None:
        parsed = _original(AmazonStateLanguageParser, "parse")(definition)
        _draw_heap_keys(parsed[0])
        if len(_asl_programs) < 64:
            _asl_programs[definition] = parsed
    return parsed


def _draw_heap_keys(program: Any) -> None:
    seen: set[int] = set()
    pending = [program]
    while pending:
        value = pending.pop()
        if id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, EvalComponent):
            _ = value.heap_key
            pending.extend(vars(value).values())
        elif isinstance(value, list | tuple | set | frozenset):
            pending.extend(value)
        elif isinstance(value, dict):
            pending.extend(value.values())


@functools.lru_cache(maxsize=4096)
def _json_path(path: str) -> Any:
    """jsonpath_ng's ``parse`` builds a new yacc parser (reading its tables) for every call;
    moto parses the same few paths at every step and every event target. The parsed
    expressions are immutable, so one per path is shared."""
    return _JSONPATH_PARSE(path)


_JSONPATH_PARSE = jsonpath_ext.parse


def _sfn_boto_client(region: str, service: str, state_credentials: Any = None) -> Any:
    """One boto3 client per service and server for the executor's steps (clients are thread-safe)."""
    key = (region, service, os.environ.get("MOTO_PORT", ""), bool(botocore_stubber.enabled))
    with _sfn_clients_lock:
        client = _sfn_clients.get(key)
        if client is None:
            client = _sfn_clients[key] = _SFN_BOTO_CLIENT_FOR(region, service, state_credentials)
        return client


_SFN_BOTO_CLIENT_FOR = lambda_eval_utils.boto_client_for


_update_asts: dict[str, Any] = {}
_ast_pickles: dict[int, tuple[Any, bytes]] = {}  # id(cached tree) -> (tree, its pickle)


def _update_expression_ast(cls: type, expression: str) -> Any:
    """``UpdateExpressionParser.make``, once per expression string. Its callers only read the
    tree (the validator works on a deep copy of it), and Serval's expressions are a few
    templates with placeholders, so tokenizing and parsing each one again was wasted."""
    ast = _update_asts.get(expression)
    if ast is None:
        ast = _original(UpdateExpressionParser, "make").__func__(cls, expression)
        if len(_update_asts) < 4096:
            _update_asts[expression] = ast
            with contextlib.suppress(pickle.PicklingError, TypeError, AttributeError):  # else deep-copied
                _ast_pickles[id(ast)] = (ast, pickle.dumps(ast, protocol=pickle.HIGHEST_PROTOCOL))
    return ast


def _copy_for_validation(value: Any, memo: dict[int, Any] | None = None) -> Any:
    """The validators' ``deepcopy``: a cached update expression's tree is copied by unpickling
    its pickle (8x faster than ``copy.deepcopy``, the same tree); anything else is deep-copied."""
    entry = _ast_pickles.get(id(value))
    if entry is None or entry[0] is not value:
        return copy.deepcopy(value, memo)
    return pickle.loads(entry[1])


def _install_request_path() -> None:
    _replace(DomainDispatcherApplication, "get_backend_for_host", _backend_for_host)
    _replace(Queue, "attributes", property(_queue_attributes))
    _replace(Message, "mark_received", _mark_received)
    _replace(Queue, "delete_message", _delete_message)
    _replace(AmazonStateLanguageParser, "parse", staticmethod(_parse_asl))
    _replace(lambda_eval_utils, "boto_client_for", _sfn_boto_client)
    _replace(UpdateExpressionParser, "make", classmethod(_update_expression_ast))
    _replace(ddb_validators, "deepcopy", _copy_for_validation)
    _replace(jsonpath_ext, "parse", _json_path)  # moto's events import it at each call
    _replace(sfn_json_path, "parse", _json_path)


# --------------------------------------------------------------------------- 9. Cognito auth_time

_auth_times: dict[str, int] = {}  # origin_jti (one sign-in) -> when it signed in
_auth_times_lock = threading.Lock()


def _sfn_set_stop(self: SfnEnvironment, stop_date: Any, cause: str | None, error: str | None) -> None:
    """Stop the program, and wake every step of it that waits for a task token."""
    _call_original(SfnEnvironment, "set_stop", self, stop_date, cause, error)
    for endpoint in list(self.callback_pool_manager._pool.values()):
        endpoint.interrupt_all()


def _sfn_set_error(self: SfnEnvironment, error: Any) -> None:
    """An error after a stop (a woken wait ends as a timeout) leaves the program stopped."""
    if isinstance(self.program_state(), ProgramStopped):
        return
    _call_original(SfnEnvironment, "set_error", self, error)


def _create_jwt(
    self: CognitoIdpUserPool,
    client_id: str,
    username: str,
    token_use: str,
    expires_in: int = 60 * 60,
    extra_data: dict[str, Any] | None = None,
) -> tuple[str, int]:
    extra = dict(extra_data or {})
    origin = extra.get("origin_jti")
    if origin is not None and "auth_time" not in extra:
        with _auth_times_lock:
            extra["auth_time"] = _auth_times.setdefault(str(origin), int(time.time()))
    return cast(
        tuple[str, int],
        _call_original(
            CognitoIdpUserPool, "create_jwt", self, client_id, username, token_use, expires_in, extra
        ),
    )


# --------------------------------------------------------------------------- 6. size limits

MAX_ITEM_BYTES = 400 * 1024
MAX_TRANSACTION_BYTES = 4 * 1024 * 1024


def _attrs_size(attrs: dict[str, Any]) -> int:
    return sum(len(name.encode("utf-8")) + DynamoType(value).size() for name, value in attrs.items())


def _transact_action_size(entry: dict[str, Any]) -> int:
    op = next(iter(entry.values()))
    if "Item" in op:
        return _attrs_size(op["Item"])
    return _attrs_size(op.get("Key", {})) + sum(
        DynamoType(v).size() for v in op.get("ExpressionAttributeValues", {}).values()
    )


def _transact_size_limit(self: DynamoHandler) -> ActionResult:
    size = sum(_transact_action_size(entry) for entry in self.body.get("TransactItems", []))
    if size > MAX_TRANSACTION_BYTES:
        raise MockValidationException("Transaction request cannot be larger than 4 MB")
    return cast(ActionResult, _call_original(DynamoHandler, "transact_write_items", self))


def _batch_size_limit(self: DynamoHandler) -> ActionResult:
    for requests in self.body.get("RequestItems", {}).values():
        for request in requests:
            item = request.get("PutRequest", {}).get("Item")
            if item is not None and _attrs_size(item) > MAX_ITEM_BYTES:
                raise ItemSizeTooLarge
    return cast(ActionResult, _call_original(DynamoHandler, "batch_write_item", self))


def install_limits(*, checked: bool = False) -> bool:
    """Refuse what AWS refuses for size, before moto writes anything (idempotent).

    Returns whether this call installed them (so the caller knows to uninstall them).
    ``checked``: the caller has just checked moto's internals.
    """
    if _limits.installed:
        return False
    if not checked:
        check_moto_internals()
    _replace(DynamoHandler, "transact_write_items", _transact_size_limit, _limits)
    _replace(DynamoHandler, "batch_write_item", _batch_size_limit, _limits)
    _limits.installed = True
    return True


def uninstall_limits() -> None:
    if _limits.installed:
        _restore_all(_limits)
        _limits.installed = False


@contextmanager
def limits_installed() -> Iterator[None]:
    installed_here = install_limits()
    try:
        yield
    finally:
        if installed_here:
            uninstall_limits()


# --------------------------------------------------------------------------- install / uninstall


def install() -> None:
    """Apply every patch (idempotent)."""
    if _state.installed:
        return
    check_moto_internals()
    _state.generation += 1
    _replace(LambdaFunction, "_invoke_lambda", _invoke_lambda)
    _replace(Table, "query", _query)
    _replace(Table, "put_item", _put_item)
    _replace(Table, "delete_item", _delete_item)
    _replace(Table, "__deepcopy__", _table_deepcopy)
    _replace(DynamoDBBackend, "update_item", _update_item)
    _replace(DynamoDBBackend, "transact_write_items", _transact_write_items)
    _replace(StreamShard, "add", _stream_add)
    _replace(StreamShard, "get", _stream_get)
    _replace(ShardIterator, "__init__", _shard_iterator_init)
    _replace(DynamoDBStreamsBackend, "get_records", _get_records)
    for handler in (DynamoHandler, DynamoDBStreamsHandler):
        _replace(handler, "call_action", _serialized(handler.call_action))
    for fast_handler in FAST_ACTIONS:
        _replace(fast_handler, "serialized", _fast_serialized(fast_handler))
    _install_request_path()
    _replace(CognitoIdpUserPool, "create_jwt", _create_jwt)
    _replace(SfnEnvironment, "set_stop", _sfn_set_stop)
    _replace(SfnEnvironment, "set_error", _sfn_set_error)
    _state.limits = install_limits(checked=True)
    _state.installed = True


def uninstall() -> None:
    """Put moto back as it was."""
    if _state.installed:
        _restore_all()
        if _state.limits:
            uninstall_limits()
        _state.installed = False


def is_installed() -> bool:
    return _state.installed


@contextmanager
def installed() -> Iterator[None]:
    was_installed = _state.installed
    install()
    try:
        yield
    finally:
        if not was_installed:
            uninstall()
