"""Media type detection from an object's key and content type."""

from __future__ import annotations

import pytest

from serval.domain.media import DATA_KEY, MediaType, detect, extension, is_manifest


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("a.png", MediaType.IMAGE),
        ("dir/a.JPEG", MediaType.IMAGE),
        ("x/y/z.Tiff", MediaType.IMAGE),
        ("notes.txt", MediaType.TEXT),
        ("README.MD", MediaType.TEXT),
        ("song.Mp3", MediaType.AUDIO),
        ("voice.opus", MediaType.AUDIO),
        ("clip.MOV", MediaType.VIDEO),
        ("clip.webm", MediaType.VIDEO),
        ("scan.PDF", MediaType.DOCUMENT),
        ("archive.tar.gz", None),
        ("data.bin", None),
        ("noextension", None),
        ("folder.png/file", None),  # the extension is the last path part's
        (".png", None),  # a dot-file has no extension
        ("", None),
    ],
)
def test_detect_by_extension_case_insensitive(key: str, expected: MediaType | None) -> None:
    assert detect(key) == expected


@pytest.mark.parametrize(
    ("key", "content_type", "expected"),
    [
        ("a.mp3", "image/png", MediaType.IMAGE),  # a specific content type beats the extension
        ("a.png", "audio/mpeg", MediaType.AUDIO),
        ("a.bin", "video/mp4", MediaType.VIDEO),
        ("a.bin", "text/plain; charset=utf-8", MediaType.TEXT),
        ("a.bin", " Application/PDF ", MediaType.DOCUMENT),
        ("a.bin", "IMAGE/JPEG", MediaType.IMAGE),
    ],
)
def test_specific_content_type_beats_extension(key: str, content_type: str, expected: MediaType) -> None:
    assert detect(key, content_type) is expected


@pytest.mark.parametrize(
    "content_type", ["application/octet-stream", "binary/octet-stream", "text/csv", "", None]
)
def test_unspecific_content_type_falls_back_to_extension(content_type: str | None) -> None:
    assert detect("photo.webp", content_type) is MediaType.IMAGE
    assert detect("blob.xyz", content_type) is None


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("m.jsonl", True),
        ("in/m.NDJSON", True),
        ("m.csv", True),
        ("output.manifest", True),
        ("m.json", False),
        ("m.jsonl.png", False),
        ("jsonl", False),
    ],
)
def test_is_manifest(key: str, expected: bool) -> None:
    assert is_manifest(key) is expected


def test_extension_is_lower_case_with_dot() -> None:
    assert extension("A/B.C/File.JPG") == ".jpg"


def test_every_media_type_has_a_data_key_and_an_extension() -> None:
    # Given each media type / Then it has a default data key and is recognised from some key
    assert set(DATA_KEY) == set(MediaType)
    samples = {"image": "x.png", "text": "x.txt", "audio": "x.wav", "video": "x.mp4", "document": "x.pdf"}
    for media in MediaType:
        assert detect(samples[media.value]) is media
