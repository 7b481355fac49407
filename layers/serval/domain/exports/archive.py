"""Zip archives written as a stream: members go in one at a time and come out as bytes.

The archive is written to a sink that cannot seek (zip data descriptors), so nothing but the
member being compressed is held in memory; a member may be a file object (copied in chunks).
"""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Iterable, Iterator
from typing import IO


class _Sink:
    """A write-only, non-seekable byte buffer (``zipfile`` then writes data descriptors)."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def write(self, data: bytes) -> int:
        self._buffer += data
        return len(data)

    def flush(self) -> None:
        return None

    def take(self) -> bytes:
        data = bytes(self._buffer)
        self._buffer.clear()
        return data


Member = tuple[str, bytes | IO[bytes]]


def zip_chunks(members: Iterable[Member]) -> Iterator[bytes]:
    """The zip of ``members`` (name, content), as chunks of bytes."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:  # type: ignore[call-overload]
        for name, content in members:
            if isinstance(content, bytes):
                archive.writestr(name, content)
            else:
                with archive.open(name, "w") as target:
                    shutil.copyfileobj(content, target)
            yield sink.take()
    yield sink.take()
