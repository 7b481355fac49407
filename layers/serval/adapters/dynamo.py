"""Low-level DynamoDB helpers shared by the stores: models, transactions, cursors, counters."""

from __future__ import annotations

import base64
import json
import random
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from serval import keys
from serval.domain import limits
from serval.domain.lifecycle import TaskStatus
from serval.errors import (
    InvalidCursor,
    ItemRefused,
    ItemTooLarge,
    Throttled,
    TransactionTooLarge,
)
from serval.settings import settings

if TYPE_CHECKING:
    from serval.adapters.dynamo_models import AuditTableModels, TaskTableModels

MAX_TRANSACTION_ACTIONS = 100
# Refusals botocore's standard retry mode retries itself (throttling errors).
THROTTLING_CODES = frozenset(
    {"ThrottlingException", "ProvisionedThroughputExceededException", "TransactionInProgressException"}
)


def tasks() -> TaskTableModels:
    # pynamodb (and botocore under it) load on first use, not at import: smaller cold starts
    from serval.adapters.dynamo_models import tasks_models

    cfg = settings()
    return tasks_models(cfg.TASKS_TABLE, cfg.AWS_CALL_BUDGET)


def audit() -> AuditTableModels:
    from serval.adapters.dynamo_models import audit_models

    cfg = settings()
    return audit_models(cfg.AUDIT_TABLE, cfg.AWS_CALL_BUDGET)


# ---- sizes, as DynamoDB counts them ---------------------------------------------------------


def _text_bytes(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _number_bytes(text: str) -> int:
    """1 byte per two significant digits, plus 1 (leading and trailing zeros are not stored)."""
    mantissa = text.lstrip("+-").lower().split("e", 1)[0]
    digits = mantissa.replace(".", "").strip("0") or "0"
    return (len(digits) + 1) // 2 + 1


def value_size(value: Mapping[str, Any]) -> int:
    """The stored size of one attribute value (low-level form, ``{"S": ...}``)."""
    kind, inner = next(iter(value.items()))
    if kind == "S":
        return _text_bytes(inner)
    if kind == "N":
        return _number_bytes(str(inner))
    if kind == "B":
        return len(inner) if isinstance(inner, bytes | bytearray) else len(base64.b64decode(inner))
    if kind in {"BOOL", "NULL"}:
        return 1
    if kind == "SS":
        return sum(_text_bytes(v) for v in inner)
    if kind == "NS":
        return sum(_number_bytes(str(v)) for v in inner)
    if kind == "BS":
        return sum(value_size({"B": v}) for v in inner)
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in inner)
    if kind == "M":
        return 3 + sum(1 + _text_bytes(k) + value_size(v) for k, v in inner.items())
    raise ValueError(f"unknown attribute type {kind!r}")


def item_size(item: Mapping[str, Mapping[str, Any]]) -> int:
    """An item's stored size as DynamoDB counts it against its 400 KB limit: each attribute's
    name (UTF-8) plus its value (strings in UTF-8, numbers about one byte per two digits,
    3 bytes plus 1 per element for lists and maps)."""
    return sum(_text_bytes(name) + value_size(value) for name, value in item.items())


def action_size(action: Mapping[str, Any]) -> int:
    """What one TransactWriteItems action adds to the transaction's 4 MB: a put's item, or
    the key and expression values of an update, delete or condition check."""
    body = next(iter(action.values()))
    if "Item" in body:
        return item_size(body["Item"])
    size = item_size(body["Key"])
    return size + sum(value_size(v) for v in body.get("ExpressionAttributeValues", {}).values())


def check_item(item: Mapping[str, Mapping[str, Any]], entity: str, limit: int | None = None) -> int:
    """The item's stored size; raises ItemTooLarge when it is over ``limit`` (DynamoDB's)."""
    limit = limits.MAX_ITEM_BYTES if limit is None else limit
    size = item_size(item)
    if size > limit:
        raise ItemTooLarge(
            f"the {entity} is {size} bytes stored; the limit is {limit}",
            details={"entity": entity, "bytes": size, "limit": limit},
        )
    return size


def refused(exc: Exception, message: str) -> ItemRefused:
    """DynamoDB's ValidationException as a domain error (its text goes in the details only)."""
    error = getattr(exc, "response", {}).get("Error", {})
    return ItemRefused(message, details={"reason": str(error.get("Message", ""))[:500]})


class Tx:
    """An ordered TransactWriteItems. Cancellation reasons index into ``actions`` as added."""

    def __init__(self) -> None:
        self.actions: list[dict[str, Any]] = []

    def __len__(self) -> int:
        return len(self.actions)

    def size(self) -> int:
        """The transaction's size as counted against DynamoDB's 4 MB."""
        return sum(action_size(a) for a in self.actions)

    def put(
        self,
        model: Any,
        condition: str | None = None,
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
        *,
        old_on_failure: bool = False,
    ) -> Tx:
        """Put a pynamodb model instance (serialized by its own attribute classes). With
        ``old_on_failure``, a failed condition hands back the item that stands in the way
        (:attr:`TransactionCancelled.items`)."""
        action: dict[str, Any] = {"TableName": model.Meta.table_name, "Item": model.serialize()}
        if old_on_failure:
            action["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        self._condition(action, condition, names, values)
        self.actions.append({"Put": action})
        return self

    def update(
        self,
        table: str,
        key: dict[str, str],
        expression: str,
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
        condition: str | None = None,
    ) -> Tx:
        action: dict[str, Any] = {"TableName": table, "Key": _key(key), "UpdateExpression": expression}
        self._condition(action, condition, names, values)
        self.actions.append({"Update": action})
        return self

    def delete(
        self,
        table: str,
        key: dict[str, str],
        condition: str | None = None,
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
    ) -> Tx:
        action: dict[str, Any] = {"TableName": table, "Key": _key(key)}
        self._condition(action, condition, names, values)
        self.actions.append({"Delete": action})
        return self

    def check(
        self,
        table: str,
        key: dict[str, str],
        condition: str,
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
    ) -> Tx:
        action: dict[str, Any] = {"TableName": table, "Key": _key(key)}
        self._condition(action, condition, names, values)
        self.actions.append({"ConditionCheck": action})
        return self

    @staticmethod
    def _condition(
        action: dict[str, Any],
        condition: str | None,
        names: dict[str, str] | None,
        values: dict[str, Any] | None,
    ) -> None:
        if condition:
            action["ConditionExpression"] = condition
        if names:
            action["ExpressionAttributeNames"] = names
        if values:
            action["ExpressionAttributeValues"] = {k: serialize(v) for k, v in values.items()}

    def commit(self, token: str | None = None, attempts: int = 6) -> None:
        """Run the transaction, retrying only TransactionConflict (with jittered backoff): botocore
        retries throttling, and a second loop around it would multiply the retries.

        A failed condition raises :class:`TransactionCancelled` naming the failed actions.
        """
        if not self.actions:
            return
        if len(self.actions) > MAX_TRANSACTION_ACTIONS:
            raise TransactionTooLarge(
                f"a transaction holds at most {MAX_TRANSACTION_ACTIONS} actions",
                details={"actions": len(self.actions), "limit": MAX_TRANSACTION_ACTIONS},
            )
        for action in self.actions:
            body = action.get("Put")
            if body is not None:
                check_item(body["Item"], str(body["Item"].get(keys.ENTITY, {}).get("S", "item")))
        size = self.size()
        if size > limits.MAX_TRANSACTION_BYTES:
            raise TransactionTooLarge(
                f"the change needs a transaction of {size} bytes; the limit is {limits.MAX_TRANSACTION_BYTES}",
                details={"bytes": size, "limit": limits.MAX_TRANSACTION_BYTES},
            )
        from botocore.exceptions import ClientError

        from serval.adapters import clients

        kwargs: dict[str, Any] = {"TransactItems": self.actions}
        if token:
            kwargs["ClientRequestToken"] = token
        for attempt in range(attempts):
            try:
                clients.dynamodb().transact_write_items(**kwargs)
                return
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code == "TransactionCanceledException":
                    reasons = exc.response.get("CancellationReasons", [])
                    codes = [r.get("Code", "None") for r in reasons]
                    failed = tuple(i for i, c in enumerate(codes) if c == "ConditionalCheckFailed")
                    if failed:
                        items: list[dict[str, Any] | None] = [
                            dict(r["Item"]) if "Item" in r else None for r in reasons
                        ]
                        raise TransactionCancelled(failed, codes, items) from exc
                    if "TransactionConflict" in codes and attempt < attempts - 1:
                        time.sleep(random.uniform(0, 0.02 * 2**attempt))
                        continue
                    raise Throttled("the change conflicted with another; retry", details=codes) from exc
                if code in THROTTLING_CODES:  # botocore's standard mode has retried these already
                    raise Throttled("the table is busy; retry shortly") from exc
                if code == "ValidationException":
                    raise refused(exc, "DynamoDB refused the change") from exc
                raise


class TransactionCancelled(Exception):
    """``failed``: the indexes of the actions whose condition failed; ``items``: per action, the
    item that stood in the way when the action asked for it, else None."""

    def __init__(
        self, failed: tuple[int, ...], codes: list[str], items: list[dict[str, Any] | None] | None = None
    ) -> None:
        super().__init__(f"transaction cancelled; failed conditions at {failed}")
        self.failed = failed
        self.codes = codes
        self.items = items or [None] * len(codes)


_SERIALIZER = None


def serialize(value: Any) -> dict[str, Any]:
    global _SERIALIZER
    if _SERIALIZER is None:
        from boto3.dynamodb.types import TypeSerializer

        _SERIALIZER = TypeSerializer()
    if (
        isinstance(value, dict)
        and len(value) == 1
        and next(iter(value)) in {"S", "N", "BOOL", "NULL", "L", "M"}
    ):
        return value
    if isinstance(value, float):
        from decimal import Decimal

        value = Decimal(str(value))
    return cast(dict[str, Any], _SERIALIZER.serialize(value))


def _key(key: dict[str, str]) -> dict[str, Any]:
    return {k: {"S": v} for k, v in key.items()}


def item_key(pk: str, sk: str) -> dict[str, str]:
    return {keys.PK: pk, keys.SK: sk}


# ---- cursors -------------------------------------------------------------------------------


def encode_cursor(last_evaluated_key: dict[str, Any] | None) -> str | None:
    if not last_evaluated_key:
        return None
    raw = json.dumps(last_evaluated_key, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


_SORT_OF = {keys.PK: keys.SK, keys.GSI1PK: keys.GSI1SK, keys.GSI2PK: keys.GSI2SK, keys.GSI3PK: keys.GSI3SK}


def _invalid_cursor(cursor: str, why: str) -> InvalidCursor:
    return InvalidCursor(
        f"the cursor {why}; pass the next_cursor of this listing's previous page", details={"cursor": cursor}
    )


def decode_cursor(
    cursor: str | None, partition_attr: str, partition_value: str, sort_prefix: str | None = None
) -> dict[str, Any] | None:
    """Decode a cursor this listing made, refusing any other with 422 ``invalid_cursor``.

    A cursor is the Query's ``LastEvaluatedKey``: exactly the table's key attributes (and on an
    index, the index's too), strings, in this listing's partition, its sort key within the
    Query's range (``sort_prefix``). DynamoDB fails a Query whose start key is anything else,
    so such a cursor is refused before it gets there.
    """
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)
    except ValueError as exc:
        raise _invalid_cursor(cursor, "is malformed") from exc
    sort_attr = _SORT_OF[partition_attr]
    expected = {keys.PK, keys.SK, partition_attr, sort_attr}
    if (
        not isinstance(key, dict)
        or set(key) != expected
        or not all(isinstance(v, dict) and set(v) == {"S"} and isinstance(v["S"], str) for v in key.values())
    ):
        raise _invalid_cursor(cursor, "is not a key of this listing")
    if key[partition_attr]["S"] != partition_value:
        raise _invalid_cursor(cursor, "does not belong to this listing")
    if sort_prefix is not None and not key[sort_attr]["S"].startswith(sort_prefix):
        raise _invalid_cursor(cursor, "does not belong to this listing")
    return key


# ---- counters ------------------------------------------------------------------------------


def counter_attribute(status: TaskStatus | str) -> str:
    return f"n_{TaskStatus(status).value}"


# Project-wide quality totals kept on the same counter shards as the status counts (so the
# transaction that makes a change already touches the shard: no extra item, no extra write).
METRICS = (
    "agreement_n",  # consensus rounds completed (overlap >= 2)
    "agreement_sum",  # the sum of their agreement values (0..1)
    "agreement_below",  # rounds below the project's threshold (sent to review first)
    "review_approved",  # review decisions: approve (with or without an edit)
    "review_edited",  # approvals that kept the reviewer's edit
    "review_rejected",  # review decisions: reject
)


def metric_attribute(name: str) -> str:
    if name not in METRICS:
        raise ValueError(f"unknown counter metric {name!r}")
    return f"m_{name}"


def add_counter(
    tx: Tx,
    project_id: str,
    shard_seed: str,
    deltas: dict[str, int],
    metrics: Mapping[str, float] | None = None,
) -> None:
    """Add per-status deltas (and quality ``metrics``, see :data:`METRICS`) to one counter
    shard, inside transaction ``tx``."""
    changes: dict[str, float] = {counter_attribute(s): d for s, d in deltas.items() if d}
    changes |= {metric_attribute(name): d for name, d in (metrics or {}).items() if d}
    if not changes:
        return
    names = {f"#a{i}": name for i, name in enumerate(changes)} | {"#e": keys.ENTITY}
    values: dict[str, Any] = {f":v{i}": d for i, d in enumerate(changes.values())} | {":ent": "counter"}
    tx.update(
        settings().TASKS_TABLE,
        item_key(keys.project_pk(project_id), keys.counter_sk(keys.counter_shard(shard_seed))),
        "ADD " + ", ".join(f"#a{i} :v{i}" for i in range(len(changes))) + " SET #e = :ent",
        names=names,
        values=values,
    )


@dataclass(frozen=True)
class ProjectCounters:
    by_status: dict[str, int]
    metrics: dict[str, float]


def read_project_counters(project_id: str) -> ProjectCounters:
    """Sum the counter shards of a project (status counts and quality metrics): one Query."""
    from serval.adapters import clients

    response = clients.dynamodb().query(
        TableName=settings().TASKS_TABLE,
        KeyConditionExpression="#pk = :pk AND begins_with(#sk, :prefix)",
        ExpressionAttributeNames={"#pk": keys.PK, "#sk": keys.SK},
        ExpressionAttributeValues={
            ":pk": {"S": keys.project_pk(project_id)},
            ":prefix": {"S": keys.COUNTER_SK_PREFIX},
        },
    )
    totals = {s.value: 0 for s in TaskStatus}
    metrics = dict.fromkeys(METRICS, 0.0)
    for item in response["Items"]:
        for status in TaskStatus:
            value = item.get(counter_attribute(status))
            if value:
                totals[status.value] += int(value["N"])
        for name in METRICS:
            value = item.get(metric_attribute(name))
            if value:
                metrics[name] += float(value["N"])
    return ProjectCounters(totals, metrics)


def read_counters(project_id: str) -> dict[str, int]:
    """The project's task counts by status: one Query of the counter shards."""
    return read_project_counters(project_id).by_status


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


BATCH_WRITE_LIMIT = 25  # requests per BatchWriteItem


def batch_write(requests: Sequence[dict[str, Any]], table: str | None = None) -> int:
    """BatchWriteItem in chunks of 25, retrying UnprocessedItems with backoff. Returns requests made.

    ``table``: the tasks table unless named. Raises ItemRefused when DynamoDB refuses a chunk
    (it then writes none of it); the chunks before it are written.
    """
    from botocore.exceptions import ClientError

    from serval.adapters import clients

    table = table or settings().TASKS_TABLE
    calls = 0
    for chunk in chunks(requests, BATCH_WRITE_LIMIT):
        pending: list[dict[str, Any]] = list(chunk)
        for attempt in range(12):
            calls += 1
            try:
                response = clients.dynamodb().batch_write_item(RequestItems={table: pending})  # type: ignore[dict-item]
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "ValidationException":
                    raise refused(exc, f"DynamoDB refused a batch of {len(pending)} writes") from exc
                raise
            pending = response.get("UnprocessedItems", {}).get(table, [])  # type: ignore[assignment]
            if not pending:
                break
            time.sleep(random.uniform(0, min(2.0, 0.05 * 2**attempt)))
        else:
            raise Throttled(f"{len(pending)} items stayed unprocessed after retries")
    return calls
