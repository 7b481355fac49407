"""A large manifest split into byte ranges, each imported by its own invocation.

- **Ownership.** A range ``[start, end)`` owns every line that *starts* within it: a reader
  skips the partial first line (unless the range starts at 0 or right after a newline) and
  reads past ``end`` to finish its last line. The ranges of a manifest partition its lines.
- **JSONL** is split blind at multiples of the range size (a JSON line holds no raw newline).
- **CSV** is split only where a record starts (a quoted cell may hold line breaks, so only a
  reader that followed the file from its header knows), found in one pass over the file;
  every range reads the header from the manifest's first record.
- **Identity.** A line is named by its byte offset, which no split changes; its line number
  is known once every range before it has counted its lines (:func:`first_lines`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_RANGES = 10_000  # per manifest; a larger manifest gets larger ranges


@dataclass(frozen=True)
class ByteRange:
    index: int
    start: int
    end: int  # exclusive


def range_bytes(size: int, configured: int) -> int:
    """The size of one range of a ``size``-byte manifest: ``configured``, or larger so that
    the manifest needs at most :data:`MAX_RANGES`."""
    return max(configured, -(-size // MAX_RANGES), 1)


def nominal(size: int, configured: int) -> list[ByteRange]:
    """Ranges of equal size (the last one shorter) covering ``[0, size)``; one for an empty file."""
    step = range_bytes(size, configured)
    starts = list(range(0, max(size, 1), step))
    return [ByteRange(i, s, min(size, s + step)) for i, s in enumerate(starts)]


def at_boundaries(size: int, configured: int, boundaries: Iterable[int]) -> list[ByteRange]:
    """Ranges of at least one range size each, that start only at ``boundaries`` (ascending
    offsets where a range may start, 0 implied): each range ends at the first boundary at
    least one range size past its start."""
    step = range_bytes(size, configured)
    starts = [0]
    for offset in boundaries:
        if offset >= size:
            break
        if offset >= starts[-1] + step:
            starts.append(offset)
    ends = [*starts[1:], size]
    return [ByteRange(i, s, e) for i, (s, e) in enumerate(zip(starts, ends, strict=True))]


def first_lines(lines_per_range: Sequence[int]) -> list[int]:
    """The number of each range's first line, given how many lines each range holds."""
    numbers, next_line = [], 1
    for count in lines_per_range:
        numbers.append(next_line)
        next_line += count
    return numbers


class RangeMessage(BaseModel):
    """The ingest-ranges queue's message: one byte range of one manifest import."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["ingest-range"] = "ingest-range"
    project_id: str
    import_id: str
    bucket: str
    key: str
    etag: str
    version_id: str | None = None
    principal: str | None = None  # who wrote the object, as its S3 event named them
    size: int = Field(ge=0)
    index: int = Field(ge=0, lt=MAX_RANGES)
    count: int = Field(ge=1, le=MAX_RANGES)
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    # a CSV's header record is [0, header_end): every range of a CSV reads it first
    header_end: int = Field(default=0, ge=0)

    @property
    def byte_range(self) -> ByteRange:
        return ByteRange(self.index, self.start, self.end)
