"""CoNLL 2003 for text tasks with NER results.

Each task is one document: ``-DOCSTART- -X- -X- O``, a blank line, then one token per line
(``token -X- -X- TAG``: CoNLL 2003's four columns, with no POS or chunk tags), then a blank
line. Tokens are the runs of non-whitespace in the text; a token takes the span it overlaps
(``B-`` on the span's first token, ``I-`` after), or ``O``. When spans overlap, the one that
starts first wins. The document's tokens are one "sentence" (no sentence splitting).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Iterator

from serval.domain.exports import ExportRecord
from serval.domain.results import NerResult, Span

DOCSTART = "-DOCSTART- -X- -X- O"
FLUSH_CHARS = 256 * 1024
_TOKEN = re.compile(r"\S+")


def tag_tokens(text: str, spans: list[Span]) -> list[tuple[str, str]]:
    """``(token, BIO tag)`` for every whitespace token of ``text``; offsets are code points."""
    ordered = sorted(spans, key=lambda s: (s.start, -s.end))
    tagged: list[tuple[str, str]] = []
    previous: Span | None = None
    for match in _TOKEN.finditer(text):
        start, end = match.span()
        span = next((s for s in ordered if s.start < end and s.end > start), None)
        tag = "O" if span is None else ("I-" if span is previous else "B-") + span.label
        tagged.append((match.group(), tag))
        previous = span
    return tagged


def conll_document(record: ExportRecord) -> str:
    text = record.text()
    if text is None:
        raise ValueError(f"task {record.task.task_id}: CoNLL needs inline text")
    spans = [s for r in record.results() if isinstance(r, NerResult) for s in r.spans]
    lines = [DOCSTART, ""]
    lines += [f"{token} -X- -X- {tag}" for token, tag in tag_tokens(text, spans)]
    return "\n".join(lines) + "\n\n"


def conll_chunks(records: Iterable[ExportRecord]) -> Iterator[bytes]:
    out = io.StringIO()
    for record in records:
        out.write(conll_document(record))
        if out.tell() >= FLUSH_CHARS:
            yield out.getvalue().encode("utf-8")
            out.seek(0)
            out.truncate()
    yield out.getvalue().encode("utf-8")


def read_conll(text: str) -> list[list[tuple[str, str]]]:
    """The documents of a CoNLL 2003 file as ``(token, NER tag)`` lists (the inverse, for checks)."""
    documents: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        if line.startswith("-DOCSTART-"):
            documents.append([])
        elif line.strip():
            columns = line.split(" ")
            documents[-1].append((columns[0], columns[-1]))
    return documents
