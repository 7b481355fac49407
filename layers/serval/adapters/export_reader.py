"""Reads for dataset exports: a project's tasks with their annotations, and image headers.

:func:`tasks_with_annotations` merges two Queries of the project partition that are both
ordered by task id: ``TASK#<tid>`` items and ``ANNOTATION#<tid>#<aid>`` items. Two requests
per page of tasks (not one per task), and only one task's annotations are in memory at a
time. Filters are applied by the caller, so a filtered export still reads the whole project.

A shard of a fanned-out export reads only its task-id range ``lo <= id < hi`` (see
:mod:`serval.domain.exports.shards`): both Queries become ``SK BETWEEN`` over that range.
"""

from __future__ import annotations

from collections.abc import Iterator

from serval import keys
from serval.adapters import clients, dynamo, mapping
from serval.domain.models import Annotation, Task

READ_PAGE = 500


def _after(prefix: str) -> str:
    """The first key after every key that starts with ``prefix`` (``TASK#`` -> ``TASK$``)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _iter(project_id: str, prefix: str, lo: str, hi: str | None) -> Iterator[object]:
    """Items whose SK is ``prefix + id`` with ``lo <= id < hi``, in key order."""
    m = dynamo.tasks()
    first, last = prefix + lo, (prefix + hi) if hi is not None else _after(prefix)
    items = m.Item.query(keys.project_pk(project_id), m.Item.SK.between(first, last), page_size=READ_PAGE)
    return (item for item in items if last != item.SK)  # BETWEEN is inclusive; the range is not


def tasks_with_annotations(
    project_id: str, lo: str = "", hi: str | None = None
) -> Iterator[tuple[Task, list[Annotation]]]:
    """The project's tasks with ids ``lo <= id < hi`` (all by default), in task id order,
    each with all its annotations."""
    annotations = _iter(project_id, keys.annotation_sk_prefix("")[: -len("#")], lo, hi)
    pending = next(annotations, None)
    for item in _iter(project_id, keys.task_sk(""), lo, hi):
        task = mapping.task_from_item(item)
        mine: list[Annotation] = []
        while pending is not None and str(getattr(pending, "task_id", "")) <= task.task_id:
            if pending.task_id == task.task_id:  # type: ignore[attr-defined]
                mine.append(mapping.annotation_from_item(pending))
            pending = next(annotations, None)  # an annotation of a deleted task is skipped
        yield task, mine


def read_head(bucket: str, key: str, length: int, version_id: str | None = None) -> bytes:
    """The first ``length`` bytes of an object (one ranged GET); b"" when it cannot be read."""
    from botocore.exceptions import ClientError

    kwargs = {"Bucket": bucket, "Key": key, "Range": f"bytes=0-{length - 1}"}
    if version_id:
        kwargs["VersionId"] = version_id
    try:
        response = clients.s3().get_object(**kwargs)  # type: ignore[arg-type]
    except ClientError:
        return b""
    return bytes(response["Body"].read())
