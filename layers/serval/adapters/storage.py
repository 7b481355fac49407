"""S3: streaming reads of manifests, error reports, presigned URLs."""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from serval.adapters import clients
from serval.domain.manifest import MAX_LINE_BYTES, RawLine

if TYPE_CHECKING:
    from botocore.exceptions import ClientError
from serval.errors import NotFound, PoisonRecord, Throttled, UploadNotFound, UploadRefused

READ_CHUNK = 1 << 20
_S3_BUSY = {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout"}


def _client_error() -> type[ClientError]:
    from botocore.exceptions import ClientError

    return ClientError


@dataclass(frozen=True)
class ObjectInfo:
    bucket: str
    key: str
    etag: str
    version_id: str | None
    size: int
    content_type: str | None
    metadata: dict[str, str]


def head(bucket: str, key: str, version_id: str | None = None) -> ObjectInfo:
    kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if version_id:
        kwargs["VersionId"] = version_id
    try:
        response = clients.s3().head_object(**kwargs)
    except _client_error() as exc:
        if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound", "NoSuchVersion"}:
            raise NotFound(f"s3://{bucket}/{key} does not exist") from exc
        raise
    return ObjectInfo(
        bucket=bucket,
        key=key,
        etag=response["ETag"].strip('"'),
        version_id=response.get("VersionId"),
        size=response["ContentLength"],
        content_type=response.get("ContentType"),
        metadata=dict(response.get("Metadata", {})),
    )


def iter_byte_lines(bucket: str, key: str, version_id: str | None = None) -> Iterator[bytes]:
    """Stream an object's lines as bytes (terminators dropped) without holding it in memory.

    Lines are split on ``\n`` before any decoding, so one undecodable line stays one line.
    """
    kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if version_id:
        kwargs["VersionId"] = version_id
    try:
        body = clients.s3().get_object(**kwargs)["Body"]
    except _client_error() as exc:
        if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "NoSuchVersion", "404"}:
            raise NotFound(f"s3://{bucket}/{key} does not exist") from exc
        raise
    pending = b""
    try:
        for chunk in body.iter_chunks(READ_CHUNK):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                yield line.rstrip(b"\r")
    finally:
        body.close()
    if pending:
        yield pending.rstrip(b"\r")


def iter_range_lines(
    bucket: str,
    key: str,
    *,
    version_id: str | None,
    etag: str,
    start: int,
    end: int,
    size: int,
    max_line: int = MAX_LINE_BYTES,
) -> Iterator[RawLine]:
    """The lines that start in ``[start, end)`` of the object, with their offsets: one ranged GET.

    The partial first line is skipped unless ``start`` is 0 or follows a newline; the last line
    is finished past ``end``. A line longer than ``max_line`` is cut to its first
    ``max_line + 1`` bytes (``truncated``), so the GET reads at most ``max_line + 1`` bytes past
    ``end`` and memory stays bounded. The object is the one ingested: its version, or else its
    ETag (a changed object is a PoisonRecord).
    """
    if start >= min(end, size):
        return
    first, last = max(start - 1, 0), min(size, end + max_line + 1) - 1
    kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key, "Range": f"bytes={first}-{last}"}
    if version_id:
        kwargs["VersionId"] = version_id
    elif etag:
        kwargs["IfMatch"] = f'"{etag}"'
    try:
        body = clients.s3().get_object(**kwargs)["Body"]
    except _client_error() as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code in {"NoSuchKey", "NoSuchVersion", "404"}:
            raise NotFound(f"s3://{bucket}/{key} does not exist") from exc
        if code in {"PreconditionFailed", "412"}:
            raise PoisonRecord(f"s3://{bucket}/{key} changed while it was being imported") from exc
        raise
    position = first  # the offset of the next byte read
    line_start: int | None = 0 if start == 0 else None  # None: still skipping the partial line
    line = bytearray()
    cut = False
    try:
        for chunk in body.iter_chunks(READ_CHUNK):
            at = 0
            while at < len(chunk):
                newline = chunk.find(b"\n", at)
                stop = len(chunk) if newline < 0 else newline
                if line_start is not None:
                    room = max_line + 1 - len(line)
                    line += chunk[at : min(stop, at + max(room, 0))]
                    cut = cut or stop - at > room
                position += stop - at
                if newline < 0:
                    break
                position += 1  # the newline
                at = newline + 1
                if line_start is not None:
                    yield RawLine(line_start, bytes(line) if cut else bytes(line).rstrip(b"\r"), cut)
                if position >= end:
                    return
                line_start, line, cut = position, bytearray(), False
    finally:
        body.close()
    if line_start is not None and (line or cut) and line_start < end:
        # no newline before the window's end: the object's last line, or one too long to finish
        yield RawLine(line_start, bytes(line) if cut else bytes(line).rstrip(b"\r"), cut or position < size)


def iter_lines(bucket: str, key: str, version_id: str | None = None) -> Iterator[str]:
    """Stream an object's lines (UTF-8, BOM stripped); text that is not UTF-8 is a PoisonRecord."""
    for number, line in enumerate(iter_byte_lines(bucket, key, version_id), start=1):
        try:
            yield line.removeprefix(codecs.BOM_UTF8).decode() if number == 1 else line.decode()
        except UnicodeDecodeError as exc:
            raise PoisonRecord(f"s3://{bucket}/{key} is not UTF-8 text (line {number}): {exc}") from exc


def put_bytes(body: bytes, bucket: str, key: str, content_type: str) -> None:
    clients.s3().put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)


def read_bytes(bucket: str, key: str) -> bytes:
    """A small object's whole content (an import range's error lines)."""
    try:
        return clients.s3().get_object(Bucket=bucket, Key=key)["Body"].read()
    except _client_error() as exc:
        if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
            raise NotFound(f"s3://{bucket}/{key} does not exist") from exc
        raise


def upload(fileobj: IO[bytes], bucket: str, key: str, content_type: str) -> None:
    """Upload a file object (multipart when large, so memory stays bounded)."""
    clients.s3().upload_fileobj(fileobj, bucket, key, ExtraArgs={"ContentType": content_type})


def presigned_get(bucket: str, key: str, expires: int, version_id: str | None = None) -> str:
    """A presigned GET URL (signed locally: no request to S3)."""
    params: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if version_id:
        params["VersionId"] = version_id
    return clients.s3().generate_presigned_url("get_object", Params=params, ExpiresIn=expires)


def presigned_put(
    bucket: str, key: str, content_type: str, expires: int, metadata: dict[str, str]
) -> dict[str, Any]:
    """A presigned PUT whose signature covers ``metadata``: the client must send it unchanged."""
    url = clients.s3().generate_presigned_url(
        "put_object",
        Params={"Bucket": bucket, "Key": key, "ContentType": content_type, "Metadata": metadata},
        ExpiresIn=expires,
    )
    headers = {"Content-Type": content_type} | {f"x-amz-meta-{k}": v for k, v in metadata.items()}
    return {"method": "PUT", "url": url, "headers": headers}


def start_multipart(bucket: str, key: str, content_type: str, metadata: dict[str, str]) -> str:
    response = clients.s3().create_multipart_upload(
        Bucket=bucket, Key=key, ContentType=content_type, Metadata=metadata
    )
    return response["UploadId"]


def presigned_part(bucket: str, key: str, upload_id: str, part_number: int, expires: int) -> str:
    return clients.s3().generate_presigned_url(
        "upload_part",
        Params={"Bucket": bucket, "Key": key, "UploadId": upload_id, "PartNumber": part_number},
        ExpiresIn=expires,
    )


def complete_multipart(bucket: str, key: str, upload_id: str, parts: list[dict[str, Any]]) -> str:
    """Complete a multipart upload; every refusal by S3 is a named 4xx, never a 500."""
    try:
        response = clients.s3().complete_multipart_upload(
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"ETag": p["etag"], "PartNumber": p["part_number"]} for p in parts]},
        )
    except _client_error() as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        details = {"key": key, "upload_id": upload_id, "s3_error": code}
        if code == "NoSuchUpload":
            raise UploadNotFound("no such upload in this project", details=details) from exc
        if code in _S3_BUSY or status >= 500:
            raise Throttled("storage is busy; retry the completion", details=details) from exc
        raise UploadRefused(f"S3 refused to complete the upload: {code}", details=details) from exc
    return response.get("ETag", "").strip('"')
