"""A task as the labelling and review workspaces show it (:class:`TaskDetail`): its media as
presigned GET URLs and, after a rejection, the review that sent it back.

Serves the leases (``/next``, ``/review/next``, heartbeats) and the task's detail (``GET``), so
the browser needs no second request. Presigning is local CPU work (no AWS request); only keys
under the task's own project prefix of the data bucket are signed, so a task whose data points
anywhere else (another project, another bucket, a key that only normalises into the prefix)
gets no URL for that field. A rework costs one BatchGetItem of the rejected annotations.
"""

from __future__ import annotations

import time

from serval import keys
from serval.adapters import annotations as annotation_store
from serval.adapters import mapping, projects, storage, tasks
from serval.domain import manifest
from serval.domain import queue as domain
from serval.domain.access import ProjectAccess
from serval.domain.actor import Actor
from serval.domain.models import Annotation, MediaLink, Rejection, Rework, S3Ref, Task, TaskDetail
from serval.domain.permissions import sees_all_annotations
from serval.settings import settings


def media_links(task: Task, now: int) -> dict[str, MediaLink]:
    """A presigned GET URL for each of the task's S3 references inside its project's prefix."""
    cfg = settings()
    prefix = keys.project_data_prefix(task.project_id)
    expires_at = now + cfg.MEDIA_URL_SECONDS
    links: dict[str, MediaLink] = {}
    for name, ref in task.data.items():
        if isinstance(ref, S3Ref) and manifest.in_prefix(ref.bucket, ref.key, cfg.DATA_BUCKET, prefix):
            url = storage.presigned_get(ref.bucket, ref.key, cfg.MEDIA_URL_SECONDS, ref.version_id)
            links[name] = MediaLink(url=url, expires_at=expires_at)
    return links


def _readable(
    project_id: str, rejected: list[Annotation], viewer: Actor, grant: ProjectAccess | None
) -> list[Annotation]:
    """The rejected annotations ``viewer`` may read: an annotator's own, unless the project allows all."""
    role = grant.member_role if grant else None
    own = [a for a in rejected if a.author == viewer.user_id]
    if len(own) == len(rejected) or sees_all_annotations(viewer, role, annotators_see_all=False):
        return rejected
    see_all = projects.get(project_id).settings.annotators_see_all  # read only when it decides
    return rejected if sees_all_annotations(viewer, role, see_all) else own


def _rework(
    project_id: str, task_id: str, rejection: Rejection, viewer: Actor, grant: ProjectAccess | None
) -> Rework:
    rejected = annotation_store.get_many(project_id, task_id, rejection.annotation_ids)
    return Rework(
        comment=rejection.comment,
        reviewer=rejection.reviewer,
        rejected_at=rejection.rejected_at,
        rejected_annotations=_readable(project_id, rejected, viewer, grant),
    )


def get(project_id: str, task_id: str, viewer: Actor, grant: ProjectAccess | None) -> TaskDetail:
    """The task (404 for an unknown id or another project's), with its media URLs and its rework."""
    item = tasks.get_item(project_id, task_id)
    task = mapping.task_from_item(item)
    rejection = mapping.rejection_from_item(item)
    return TaskDetail(
        **dict(task),
        media=media_links(task, int(time.time())),
        rework=_rework(project_id, task_id, rejection, viewer, grant) if rejection else None,
    )


def lease(
    project_id: str, task_id: str, until: int, viewer: Actor, grant: ProjectAccess | None
) -> domain.Lease:
    """The lease the caller just took or extended on ``task_id``, with the task's detail."""
    return domain.Lease(task=get(project_id, task_id, viewer, grant), lease_until=until)
