"""Media types and how an object's type is recognised."""

from __future__ import annotations

import posixpath
from enum import StrEnum


class MediaType(StrEnum):
    IMAGE = "image"
    TEXT = "text"
    AUDIO = "audio"
    VIDEO = "video"
    DOCUMENT = "document"


_BY_EXTENSION: dict[str, MediaType] = {
    **dict.fromkeys(
        (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff", ".avif", ".heic"), MediaType.IMAGE
    ),
    **dict.fromkeys((".txt", ".md"), MediaType.TEXT),
    **dict.fromkeys((".wav", ".mp3", ".flac", ".ogg", ".oga", ".m4a", ".aac", ".opus"), MediaType.AUDIO),
    **dict.fromkeys((".mp4", ".webm", ".mov", ".mkv", ".avi", ".m4v"), MediaType.VIDEO),
    **dict.fromkeys((".pdf",), MediaType.DOCUMENT),
}

_BY_CONTENT_TYPE_PREFIX: dict[str, MediaType] = {
    "image/": MediaType.IMAGE,
    "audio/": MediaType.AUDIO,
    "video/": MediaType.VIDEO,
    "text/plain": MediaType.TEXT,
    "application/pdf": MediaType.DOCUMENT,
}

MANIFEST_EXTENSIONS = frozenset({".jsonl", ".ndjson", ".csv", ".manifest"})

# Default key under which a media object appears in ``Task.data``.
DATA_KEY: dict[MediaType, str] = {
    MediaType.IMAGE: "image",
    MediaType.TEXT: "text",
    MediaType.AUDIO: "audio",
    MediaType.VIDEO: "video",
    MediaType.DOCUMENT: "document",
}


def extension(key: str) -> str:
    return posixpath.splitext(key.lower())[1]


def is_manifest(key: str) -> bool:
    return extension(key) in MANIFEST_EXTENSIONS


def detect(key: str, content_type: str | None = None) -> MediaType | None:
    """The media type from the content type when it is specific, else from the extension."""
    if content_type:
        ct = content_type.split(";")[0].strip().lower()
        for prefix, media in _BY_CONTENT_TYPE_PREFIX.items():
            if ct.startswith(prefix):
                return media
    return _BY_EXTENSION.get(extension(key))
