"""Manifest parsing: JSONL and CSV lines to tasks, and every broken line to a LineError.

Lines are fed the way the S3 reader yields them: without line terminators, each with the byte
offset where it starts (here: lines of a "\n"-joined text), then decoded.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from serval.domain.manifest import (
    MAX_LINE_BYTES,
    ManifestContext,
    RawLine,
    TextLine,
    csv_record_starts,
    decode_lines,
    parse,
    parse_csv,
    parse_jsonl,
    primary_media,
)
from serval.domain.media import MediaType
from serval.domain.models import LineError, S3Ref, TaskCreate, TextRef

BUCKET = "serval-data"
PREFIX = "projects/p_1/"
JSONL_CTX = ManifestContext(BUCKET, PREFIX, "projects/p_1/imports/batch.jsonl")
CSV_CTX = ManifestContext(BUCKET, PREFIX, "projects/p_1/imports/batch.csv")


def raw_lines(*lines: bytes) -> list[RawLine]:
    """Lines of ``b"\\n".join(lines)``, with their offsets."""
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)
    return [RawLine(offset, line) for offset, line in zip(offsets, lines, strict=False)]


def text_lines(*lines: str) -> list[TextLine]:
    return [
        TextLine(raw.offset, line)
        for raw, line in zip(raw_lines(*(x.encode() for x in lines)), lines, strict=True)
    ]


def jsonl(*objs: Any) -> list[tuple[int, TaskCreate | LineError]]:
    lines = [o if isinstance(o, str) else json.dumps(o) for o in objs]
    return [(p.number, p.result) for p in parse_jsonl(JSONL_CTX, text_lines(*lines))]


def one_task(*objs: Any) -> TaskCreate:
    ((number, parsed),) = jsonl(*objs)
    assert number == 1
    assert isinstance(parsed, TaskCreate), parsed
    return parsed


def one_error(*objs: Any) -> LineError:
    ((number, parsed),) = jsonl(*objs)
    assert isinstance(parsed, LineError), parsed
    assert parsed.line == number
    return parsed


def csv_rows(*lines: str) -> list[tuple[int, TaskCreate | LineError]]:
    return [(p.number, p.result) for p in parse_csv(CSV_CTX, text_lines(*lines))]


def s3(task: TaskCreate, key: str) -> S3Ref:
    ref = task.data[key]
    assert isinstance(ref, S3Ref), ref
    return ref


# --- JSONL: line shapes ----------------------------------------------------------------------


def test_serval_style_line_becomes_a_task() -> None:
    # Given a Serval-style line with every task field
    line = {
        "data": {"image": f"s3://{BUCKET}/projects/p_1/img/a.png", "caption": "a cat on a mat"},
        "tags": ["pets", "pets", "batch-1"],
        "priority": 3,
        "metadata": {"camera": "x100"},
        "external_id": "ext-1",
    }

    # When it is parsed
    task = one_task(line)

    # Then the S3 reference, the inline text and the task fields are all kept
    image = s3(task, "image")
    assert (image.bucket, image.key, image.media_type) == (BUCKET, "projects/p_1/img/a.png", MediaType.IMAGE)
    assert task.data["caption"] == TextRef(text="a cat on a mat")
    assert task.tags == ["pets", "batch-1"]
    assert task.priority == 3
    assert task.metadata == {"camera": "x100"}
    assert task.external_id == "ext-1"


def test_serval_style_unknown_top_level_keys_and_meta_become_metadata() -> None:
    task = one_task({"data": {"text": "hi"}, "meta": {"a": 1}, "metadata": {"b": 2}, "batch": "7"})
    assert task.metadata == {"a": 1, "b": 2, "batch": "7"}


def test_ground_truth_source_ref_line_becomes_an_image_task() -> None:
    # Given a Ground Truth line pointing into the project, with label keys beside it
    task = one_task(
        {
            "source-ref": f"s3://{BUCKET}/{PREFIX}raw/dog.jpg",
            "class": 1,
            "class-metadata": {"confidence": 0.9},
        }
    )

    # Then the reference is the task's image, and the other keys are metadata
    image = s3(task, "image")
    assert (image.bucket, image.key, image.media_type) == (BUCKET, f"{PREFIX}raw/dog.jpg", MediaType.IMAGE)
    assert set(task.data) == {"image"}
    assert task.metadata == {"class": 1, "class-metadata": {"confidence": 0.9}}


@pytest.mark.parametrize(
    ("key", "data_key", "media"),
    [
        ("clip.wav", "audio", MediaType.AUDIO),
        ("film.mp4", "video", MediaType.VIDEO),
        ("doc.pdf", "document", MediaType.DOCUMENT),
    ],
)
def test_ground_truth_source_ref_is_keyed_by_its_media_type(
    key: str, data_key: str, media: MediaType
) -> None:
    task = one_task({"source-ref": f"s3://{BUCKET}/{PREFIX}{key}"})
    assert s3(task, data_key).media_type is media


def test_ground_truth_source_line_is_inline_text() -> None:
    task = one_task({"source": "The quick brown fox", "label": "animals"})
    assert task.data == {"text": TextRef(text="The quick brown fox")}
    assert task.metadata == {"label": "animals"}


def test_ground_truth_task_fields_stay_task_fields() -> None:
    task = one_task({"source": "x", "tags": ["a"], "priority": 9})
    assert (task.tags, task.priority, task.metadata) == (["a"], 9, {})


@pytest.mark.parametrize(("raw_id", "expected"), [("abc", "abc"), (42, "42")])
def test_id_becomes_external_id(raw_id: Any, expected: str) -> None:
    task = one_task({"source": "x", "id": raw_id})
    assert task.external_id == expected
    assert "id" not in task.metadata


def test_explicit_external_id_wins_over_id() -> None:
    assert one_task({"data": {"text": "x"}, "id": "a", "external_id": "b"}).external_id == "b"


# --- JSONL: references -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected_key"),
    [
        ("img/a.png", "projects/p_1/img/a.png"),
        ("a.PNG", "projects/p_1/a.PNG"),
        ("./a.png", "projects/p_1/a.png"),
        ("raw/../a.png", "projects/p_1/a.png"),
        ("deep/../b.wav", "projects/p_1/b.wav"),
    ],
)
def test_relative_keys_resolve_against_the_project_prefix(value: str, expected_key: str) -> None:
    task = one_task({"data": {"image": value}})
    ref = s3(task, "image")
    assert (ref.bucket, ref.key) == (BUCKET, expected_key)
    assert ref.media_type is not None


@pytest.mark.parametrize(
    "value", ["../p_2/a.png", "../../etc/a.png", "/projects/p_1/a.png", "../p_12/a.png", "../../p_1/a.png"]
)
def test_relative_keys_that_leave_the_project_prefix_are_rejected(value: str) -> None:
    error = one_error({"data": {"image": value}})
    assert "leaves the project's prefix" in error.error


@pytest.mark.parametrize("key", ["projects/p_2/a.png", "projects/p_12/a.png", "other/a.png", "a.png"])
def test_s3_uri_into_the_data_bucket_outside_the_project_is_rejected(key: str) -> None:
    error = one_error({"source-ref": f"s3://{BUCKET}/{key}"})
    assert "outside this project's prefix" in error.error


@pytest.mark.parametrize("bucket", ["someone-else", "serval-exports", "SERVAL-DATA"])
def test_s3_uri_into_another_bucket_is_rejected(bucket: str) -> None:
    # Given a reference into a bucket other than the data bucket (the exports bucket, say),
    # even under a key that looks like this project's
    error = one_error({"source-ref": f"s3://{bucket}/{PREFIX}a.png"})

    # Then it is a line error: the pipeline never reads another bucket for a project
    assert "outside the data bucket" in error.error


def test_explicit_s3_object_is_checked_and_gets_a_media_type() -> None:
    # Given an explicit reference object in this project / Then its media type is filled in
    task = one_task({"data": {"image": {"kind": "s3", "bucket": BUCKET, "key": "projects/p_1/x.jpg"}}})
    assert s3(task, "image").media_type is MediaType.IMAGE

    # And one into another project is refused
    error = one_error({"data": {"image": {"kind": "s3", "bucket": BUCKET, "key": "projects/p_2/x.jpg"}}})
    assert "outside this project's prefix" in error.error


@pytest.mark.parametrize("uri", ["s3://", "s3://bucket-only", "s3://bucket/", "s3:///key.png"])
def test_malformed_s3_uri_is_rejected(uri: str) -> None:
    assert "malformed S3 URI" in one_error({"data": {"image": uri}}).error


@pytest.mark.parametrize(
    "value",
    ["just some words", "no extension here.", "two lines\nmentioning a.png", "x" * 1_100 + ".png"],
)
def test_values_that_are_not_keys_are_inline_text(value: str) -> None:
    task = one_task({"data": {"text": value}})
    assert task.data["text"] == TextRef(text=value)


@pytest.mark.parametrize(
    "line",
    [
        {"data": "s3://x/y.png"},
        {"data": {"image": 5}},
        {"data": {"image": None}},
        {"nothing": "here"},
        {"source-ref": 7},
    ],
)
def test_lines_without_usable_data_are_rejected(line: dict[str, Any]) -> None:
    one_error(line)


def test_validation_errors_name_the_field() -> None:
    error = one_error({"source": "x", "tags": ["bad#tag"]})
    assert error.error.startswith("tags.0:")


# --- JSONL: line handling --------------------------------------------------------------------


def test_blank_lines_are_skipped_and_numbers_stay_physical() -> None:
    # Given blank and whitespace-only lines between tasks
    parsed = jsonl("", {"source": "a"}, "   ", "\t", {"source": "b"}, "")

    # Then only the two tasks come out, numbered by their physical (1-based) line
    assert [n for n, _ in parsed] == [2, 5]
    assert all(isinstance(p, TaskCreate) for _, p in parsed)


def test_invalid_json_gives_a_line_error_and_parsing_goes_on() -> None:
    # Given a broken line between two good ones
    parsed = jsonl({"source": "a"}, '{"source": "b"', {"source": "c"})

    # Then the broken one is a LineError with its number and raw text; the others are tasks
    assert [n for n, _ in parsed] == [1, 2, 3]
    error = parsed[1][1]
    assert isinstance(error, LineError)
    assert (error.line, error.raw) == (2, '{"source": "b"')
    assert error.error.startswith("invalid JSON")
    assert isinstance(parsed[0][1], TaskCreate)
    assert isinstance(parsed[2][1], TaskCreate)


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ('{"source": "a", "metadata": {"score": NaN}}', "non_finite_number"),
        ('{"source": "a", "metadata": {"score": -Infinity}}', "non_finite_number"),
        ('{"source": "a", "metadata": {"n": ' + "9" * 4400 + "}}", "number_out_of_range"),
        ('{"source": "a", "metadata": {"x": ' + "[" * 40 + "]" * 40 + "}}", "json_too_deep"),
    ],
)
def test_numbers_json_does_not_allow_and_deep_nesting_are_line_errors(line: str, code: str) -> None:
    # Given a line with NaN, Infinity, a 4,400-digit integer or 40 nested arrays, between good lines
    parsed = jsonl({"source": "ok"}, line, {"source": "ok too"})

    # Then that line is a line error naming the reason, and the good lines are tasks
    error = parsed[1][1]
    assert isinstance(error, LineError) and error.line == 2
    assert error.error.startswith(f"invalid JSON ({code})")
    assert isinstance(parsed[0][1], TaskCreate) and isinstance(parsed[2][1], TaskCreate)


@pytest.mark.parametrize("line", ["[1, 2]", '"text"', "42", "null", "true"])
def test_non_object_lines_are_line_errors(line: str) -> None:
    parsed = jsonl({"source": "ok"}, line)
    error = parsed[1][1]
    assert isinstance(error, LineError)
    assert error.line == 2
    assert "JSON object" in error.error


def test_line_error_raw_is_truncated() -> None:
    error = one_error("{" + "x" * 5_000)
    assert len(error.raw) == 2_000


def test_over_long_line_is_rejected() -> None:
    # Given a line longer than the limit / Then it is refused without being parsed further
    line = json.dumps({"source": "x", "metadata": {"pad": "y" * MAX_LINE_BYTES}})
    error = one_error(line)
    assert "longer than" in error.error


def test_non_object_metadata_is_a_line_error() -> None:
    one_error({"source": "x", "metadata": "not an object"})


# --- CSV -------------------------------------------------------------------------------------


def test_csv_row_becomes_a_task() -> None:
    # Given a header with data, task-field and extra columns
    parsed = csv_rows(
        "image,caption_note,tags,priority,external_id,team",
        "img/a.png,,cats; pets|cute,7,e-1,vision",
    )

    # Then the row becomes one task with the relative image resolved and extras in metadata
    ((number, task),) = parsed
    assert number == 2
    assert isinstance(task, TaskCreate)
    assert s3(task, "image").key == "projects/p_1/img/a.png"
    assert task.tags == ["cats", "pets", "cute"]
    assert task.priority == 7
    assert task.external_id == "e-1"
    assert task.metadata == {"team": "vision"}  # empty cells are left out


def test_csv_header_names_are_trimmed() -> None:
    ((_, task),) = csv_rows(" text , tags ", "hello,a")
    assert isinstance(task, TaskCreate)
    assert task.data == {"text": TextRef(text="hello")}
    assert task.tags == ["a"]


@pytest.mark.parametrize(
    ("column", "value", "data_key"),
    [
        ("text", "inline words", "text"),
        ("source", "inline words", "text"),
        ("source-ref", f"s3://{BUCKET}/{PREFIX}a.mp3", "audio"),
        ("url", f"s3://{BUCKET}/{PREFIX}a.png", "image"),
        ("audio", f"s3://{BUCKET}/{PREFIX}a.flac", "audio"),
        ("document", "scan.pdf", "document"),
    ],
)
def test_csv_data_columns(column: str, value: str, data_key: str) -> None:
    ((_, task),) = csv_rows(column, value)
    assert isinstance(task, TaskCreate), task
    assert set(task.data) == {data_key}


@pytest.mark.parametrize("header", ["name,score", "image,image,tags", ""])
def test_csv_bad_header_gives_a_single_header_error(header: str) -> None:
    # Given a header with no data column (or duplicate names) followed by rows
    parsed = csv_rows(header, "a.png,1,x", "b.png,2,y")

    # Then exactly one error, for line 1, and no rows are parsed
    ((number, error),) = parsed
    assert number == 1
    assert isinstance(error, LineError)
    assert "header" in error.error


def test_csv_empty_file_yields_nothing() -> None:
    assert csv_rows() == []


def test_csv_priority_parse_error_is_a_line_error_with_its_line_number() -> None:
    parsed = csv_rows("text,priority", "a,1", "b,high", "c,2")
    assert [n for n, _ in parsed] == [2, 3, 4]
    error = parsed[1][1]
    assert isinstance(error, LineError)
    assert error.line == 3
    assert "high" in error.error
    assert error.raw == "b,high"


def test_csv_blank_rows_are_skipped_and_numbers_stay_physical() -> None:
    parsed = csv_rows("text,tags", "", "a,x", ",", "   ,  ", "b,y")
    assert [n for n, _ in parsed] == [3, 6]
    assert all(isinstance(p, TaskCreate) for _, p in parsed)


def test_csv_wrong_field_count_is_a_line_error() -> None:
    parsed = csv_rows("text,tags", "a,x,extra", "b", "c,y")
    assert [n for n, _ in parsed] == [2, 3, 4]
    for _, error in parsed[:2]:
        assert isinstance(error, LineError)
        assert "fields, the header has 2" in error.error
    assert isinstance(parsed[2][1], TaskCreate)


def test_csv_row_without_any_data_value_is_a_line_error() -> None:
    ((number, error),) = csv_rows("text,team", ",vision")
    assert number == 2
    assert isinstance(error, LineError)


def test_csv_quoted_fields_keep_commas_and_quotes() -> None:
    ((_, task),) = csv_rows("text,note", '"a, b and ""c""","x, y"')
    assert isinstance(task, TaskCreate)
    assert task.data["text"] == TextRef(text='a, b and "c"')
    assert task.metadata == {"note": "x, y"}


def test_csv_multi_line_quoted_field_is_one_row_and_later_numbers_are_physical() -> None:
    # Given a quoted text cell that spans physical lines 2-4, then a row on line 5
    parsed = csv_rows("text,tags", '"first line', "second line", 'third line",a', "next,b")

    # Then there are two tasks, and the row after the multi-line one has its physical number
    assert len(parsed) == 2
    assert all(isinstance(p, TaskCreate) for _, p in parsed)
    assert parsed[1][0] == 5
    task = parsed[0][1]
    assert isinstance(task, TaskCreate)
    assert task.tags == ["a"]
    text = task.data["text"]
    assert isinstance(text, TextRef)
    assert text.text.startswith("first line")
    assert text.text.endswith("third line")


def test_csv_unreadable_row_is_a_line_error_and_parsing_goes_on() -> None:
    # Given a row whose field exceeds the CSV field limit, between two good rows
    parsed = csv_rows("text", "a", "x" * 200_000, "b")

    # Then it is reported with its line number, and the rows around it still parse
    assert [n for n, _ in parsed] == [2, 3, 4]
    error = parsed[1][1]
    assert isinstance(error, LineError)
    assert "unreadable CSV row" in error.error
    assert isinstance(parsed[2][1], TaskCreate)


# --- dispatch and primary media --------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "lines"),
    [
        ("projects/p_1/m.jsonl", ['{"source": "x"}']),
        ("projects/p_1/m.manifest", ['{"source": "x"}']),
        ("projects/p_1/m.ndjson", ['{"source": "x"}']),
        ("projects/p_1/m.csv", ["source", "x"]),
        ("projects/p_1/M.CSV", ["source", "x"]),
    ],
)
def test_parse_picks_the_format_by_extension(key: str, lines: list[str]) -> None:
    parsed = list(parse(ManifestContext(BUCKET, PREFIX, key), text_lines(*lines)))
    assert len(parsed) == 1
    assert isinstance(parsed[0].result, TaskCreate)


def task_with(data: dict[str, Any]) -> TaskCreate:
    return TaskCreate.model_validate({"data": data})


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"image": {"kind": "s3", "bucket": "bkt", "key": "a.png", "media_type": "image"}}, MediaType.IMAGE),
        (
            {
                "caption": {"kind": "text", "text": "hi"},
                "audio": {"kind": "s3", "bucket": "bkt", "key": "a.wav", "media_type": "audio"},
                "image": {"kind": "s3", "bucket": "bkt", "key": "a.png", "media_type": "image"},
            },
            MediaType.AUDIO,
        ),
        ({"text": {"kind": "text", "text": "hi"}}, MediaType.TEXT),
    ],
)
def test_primary_media_is_the_first_s3_refs_type_else_text(data: dict[str, Any], expected: MediaType) -> None:
    assert primary_media(task_with(data)) is expected


def test_primary_media_of_an_unrecognised_object_is_an_error() -> None:
    with pytest.raises(ValueError, match="media type"):
        primary_media(task_with({"blob": {"kind": "s3", "bucket": "bkt", "key": "a.bin"}}))


def test_parsed_ground_truth_line_has_a_primary_media() -> None:
    assert primary_media(one_task({"source-ref": f"s3://{BUCKET}/{PREFIX}a.webm"})) is MediaType.VIDEO


# --- regressions for bugs found while writing these tests ----------------------------------------------------


def test_deeply_nested_json_line_is_a_line_error() -> None:
    # Given a deeply nested (but short) line between two good ones
    parsed = jsonl({"source": "a"}, "[" * 100_000 + "]" * 100_000, {"source": "b"})

    # Then it is a LineError and the good lines still parse
    assert [type(p) for _, p in parsed] == [TaskCreate, LineError, TaskCreate]


def test_line_over_the_byte_limit_in_utf8_is_rejected() -> None:
    # Given a valid line of 100k four-byte characters (~400 KB UTF-8, ~100k code points)
    line = json.dumps({"source": "\U0001f600" * 100_000}, ensure_ascii=False)
    assert len(line.encode()) > MAX_LINE_BYTES > len(line)

    # Then it is refused as too long
    assert "longer than" in one_error(line).error


@pytest.mark.parametrize("url", ["https://example.com/cat.png", "http://example.com/a/b.mp3"])
def test_http_url_is_not_resolved_as_a_relative_key(url: str) -> None:
    with pytest.raises(ValueError):
        JSONL_CTX.resolve("image", url)


def test_csv_multi_line_quoted_field_keeps_its_line_breaks() -> None:
    ((_, task),) = csv_rows("text", '"first line', 'second line"')
    assert isinstance(task, TaskCreate)
    assert task.data["text"] == TextRef(text="first line\nsecond line")


# --- references are normalised and confined to the project's prefix of the data bucket -----


@pytest.mark.parametrize(
    "key",
    [
        "projects/p_1/../p_2/a.png",
        "projects/p_1/x/../../p_2/a.png",
        "projects/p_1/../../etc/a.png",
        "projects//p_1/../p_2/a.png",
        "./projects/p_2/a.png",
    ],
)
def test_s3_uri_that_leaves_the_prefix_after_normalising_is_rejected(key: str) -> None:
    # Given an s3:// reference whose literal key starts with this project's prefix (or
    # nearly), but whose dot segments lead out of it
    error = one_error({"source-ref": f"s3://{BUCKET}/{key}"})

    # Then it is a line error
    assert "outside this project's prefix" in error.error or "above the bucket's root" in error.error


@pytest.mark.parametrize(
    ("key", "normalised"),
    [
        ("projects/p_1/x/../a.png", "projects/p_1/a.png"),
        ("projects/p_1//x/./a.png", "projects/p_1/x/a.png"),
        ("projects/p_1/a%20b.png", "projects/p_1/a%20b.png"),
    ],
)
def test_s3_uri_inside_the_prefix_is_stored_normalised(key: str, normalised: str) -> None:
    # Given references that stay inside the prefix / Then the task holds the normalised key,
    # so no later reader (a presigned URL in a browser) resolves the dots differently
    assert s3(one_task({"source-ref": f"s3://{BUCKET}/{key}"}), "image").key == normalised


@pytest.mark.parametrize(
    "key",
    [
        "projects/p_1/%2e%2e/p_2/a.png",
        "projects/p_1/%2E/a.png",
        "projects/p_1/x%2f..%2f..%2fp_2/a.png",
        "projects/p_1/..%5cp_2/a.png",
        "projects/p_1/a\\..\\b.png",
        "projects/p_1/a.png\n",
        "projects/p_1/a\x00.png",
    ],
)
def test_s3_uri_with_hidden_dots_separators_or_control_characters_is_rejected(key: str) -> None:
    error = one_error({"source-ref": f"s3://{BUCKET}/{key}"})
    assert "percent-encoding" in error.error or "control characters" in error.error


def test_explicit_s3_object_is_normalised_and_confined_too() -> None:
    # Given explicit reference objects with dot segments
    inside = one_task({"data": {"image": {"kind": "s3", "bucket": BUCKET, "key": "projects/p_1/x/../y.jpg"}}})
    escape = {"data": {"image": {"kind": "s3", "bucket": BUCKET, "key": "projects/p_1/../p_2/y.jpg"}}}
    exports = {"data": {"image": {"kind": "s3", "bucket": "serval-exports", "key": "projects/p_1/y.jpg"}}}

    # Then the one inside is stored normalised, the others are refused
    assert s3(inside, "image").key == "projects/p_1/y.jpg"
    assert "outside this project's prefix" in one_error(escape).error
    assert "outside the data bucket" in one_error(exports).error
    assert "needs a bucket and a key" in one_error({"data": {"image": {"kind": "s3"}}}).error


@pytest.mark.parametrize("value", ["../../etc/passwd", "../p_2/notes", "a/../../../b", "/etc/passwd"])
def test_relative_reference_without_extension_that_leaves_the_prefix_is_rejected(value: str) -> None:
    # Given a reference field whose relative path has no media extension and leaves the prefix
    error = one_error({"data": {"image": value}})

    # Then it is a line error, never inline text
    assert "leaves the project's prefix" in error.error or "above the bucket's root" in error.error


# --- inline text stays text; reference fields are references -------------------------------


@pytest.mark.parametrize(
    "line",
    [
        {"data": {"text": "see notes.txt"}},
        {"data": {"text": "cat.png"}},
        {"data": {"caption": "holiday/photo.jpg"}},
        {"source": "report.pdf"},
    ],
)
def test_inline_text_ending_in_a_media_extension_is_text(line: dict[str, Any]) -> None:
    # Given a text (or free-named) field whose value ends like a file name
    task = one_task(line)

    # Then it is inline text: only s3:// or a reference field makes a reference
    assert all(isinstance(ref, TextRef) for ref in task.data.values()), task.data


def test_csv_text_column_ending_in_a_media_extension_is_text() -> None:
    ((_, task),) = csv_rows("text", "see notes.txt")
    assert isinstance(task, TaskCreate)
    assert task.data == {"text": TextRef(text="see notes.txt")}


def test_s3_uri_in_a_text_field_is_a_reference() -> None:
    task = one_task({"data": {"text": f"s3://{BUCKET}/{PREFIX}docs/a.txt"}})
    assert s3(task, "text").media_type is MediaType.TEXT


@pytest.mark.parametrize(
    ("field", "value", "media_type"),
    [
        ("image", "scans/0001", MediaType.IMAGE),
        ("audio", "takes/take-7", MediaType.AUDIO),
        ("video", f"s3://{BUCKET}/{PREFIX}clips/c1", MediaType.VIDEO),
        ("document", "contracts/c.final", MediaType.DOCUMENT),
    ],
)
def test_reference_field_without_extension_is_a_reference_of_the_fields_type(
    field: str, value: str, media_type: MediaType
) -> None:
    # Given a media field whose key has no recognisable extension
    task = one_task({"data": {field: value}})

    # Then it is a reference typed by the field, never inline text
    assert s3(task, field).media_type is media_type
    assert primary_media(task) is media_type


def test_source_ref_without_extension_is_a_line_error_not_text() -> None:
    # Given a Ground Truth line whose reference has no extension (its field names no type)
    task = one_task({"source-ref": f"s3://{BUCKET}/{PREFIX}blob"})

    # Then it is a reference whose type cannot be told: the line is refused when it is typed
    assert isinstance(task.data["image"], S3Ref)
    with pytest.raises(ValueError, match="cannot tell the media type"):
        primary_media(task)


@pytest.mark.parametrize(
    "line",
    [
        {"source": ""},
        {"source": "   "},
        {"data": {"text": "\n\t"}},
        {"data": {"caption": {"kind": "text", "text": ""}}},
        {"data": {"image": "  "}},
    ],
)
def test_empty_inline_text_or_reference_is_a_line_error(line: dict[str, Any]) -> None:
    error = one_error(line)
    assert "empty" in error.error


# --- bytes that are not UTF-8 are one line's error ------------------------------------------


def test_an_undecodable_jsonl_line_is_a_line_error_and_the_others_parse() -> None:
    # Given a manifest whose second line holds invalid UTF-8, and a BOM before the first
    raw = [
        b"\xef\xbb\xbf" + json.dumps({"source": "a"}).encode(),
        b'{"source": "caf\xe9"}',
        json.dumps({"source": "\u00e9t\u00e9"}, ensure_ascii=False).encode(),
    ]

    # When it is decoded line by line and parsed
    parsed = list(parse_jsonl(JSONL_CTX, decode_lines(raw_lines(*raw))))

    # Then only line 2 is an error, and it says why
    assert [(p.number, type(p.result)) for p in parsed] == [(1, TaskCreate), (2, LineError), (3, TaskCreate)]
    error = parsed[1].result
    assert isinstance(error, LineError)
    assert "not UTF-8" in error.error
    assert error.raw == '{"source": "caf\\xe9"}'


def test_an_undecodable_csv_row_is_a_line_error_and_the_others_parse() -> None:
    # Given a CSV whose quoted cell spans lines 3-4, line 4 not UTF-8
    raw = [b"text,tags", b"fine,a", b'"two', b'lines \xff"', b"last,b"]

    parsed = list(parse_csv(CSV_CTX, decode_lines(raw_lines(*raw))))

    # Then the row ending on line 4 is an error; rows 2 and 5 are tasks
    assert [(p.number, type(p.result)) for p in parsed] == [(2, TaskCreate), (4, LineError), (5, TaskCreate)]


def test_an_undecodable_csv_header_is_one_header_error() -> None:
    parsed = list(parse_csv(CSV_CTX, decode_lines(raw_lines(b"te\xffxt", b"a"))))
    assert [(p.number, type(p.result)) for p in parsed] == [(1, LineError)]


# --- offsets: what names a line, however the manifest is split ------------------------------


def test_each_parsed_line_and_error_carries_the_offset_where_it_starts() -> None:
    # Given JSONL lines with a blank one, and one broken
    lines = text_lines('{"source": "a"}', "", "{broken", '{"source": "b"}')
    # When they are parsed
    parsed = list(parse_jsonl(JSONL_CTX, lines))
    # Then each result names its line's offset, and the error says it too
    assert [(p.number, p.offset) for p in parsed] == [(1, 0), (3, 17), (4, 25)]
    error = parsed[1].result
    assert isinstance(error, LineError) and (error.line, error.offset) == (3, 17)


def test_a_csv_row_is_named_by_its_first_line_and_numbered_by_its_last() -> None:
    # Given a header, a row over lines 2-3 (a quoted line break), and a row on line 4
    lines = text_lines("text,tags", '"two', 'lines",a', "one,b")
    # When it is parsed
    parsed = list(parse_csv(CSV_CTX, lines))
    # Then the first row starts at line 2's offset and has number 3
    assert [(p.number, p.offset) for p in parsed] == [(3, 10), (4, 24)]


def test_csv_record_starts_skip_line_breaks_inside_quoted_cells() -> None:
    # Given a header, a row over lines 2-4, a blank row and a row
    lines = text_lines("text,tags", '"a', "b", 'c",x', "", "d,y")
    # When the places a split may start are listed
    # Then they are the starts of lines 2, 5 and 6: never inside the quoted cell
    assert list(csv_record_starts(lines)) == [10, 20, 21]


def test_csv_record_starts_are_none_for_an_unusable_header() -> None:
    # Given a header without a data column / Then the manifest cannot be split (it is one error)
    assert list(csv_record_starts(text_lines("a,b", "1,2", "3,4"))) == []


def test_an_overlong_line_is_an_error_for_its_length_even_when_cut_inside_a_character() -> None:
    # Given a line the reader cut at MAX_LINE_BYTES + 1 bytes, in the middle of a UTF-8 character
    cut = ("\u00e9" * MAX_LINE_BYTES).encode()[: MAX_LINE_BYTES + 1]
    # When it is decoded and parsed
    [parsed] = list(parse_jsonl(JSONL_CTX, decode_lines([RawLine(0, cut, truncated=True)])))
    # Then it is refused for its length, not as undecodable
    assert isinstance(parsed.result, LineError)
    assert "longer than" in parsed.result.error
