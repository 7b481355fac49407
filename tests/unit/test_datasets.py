"""The repository's own copy of the datasets: complete, intact, and used when no shared folder exists."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from infra.local import datasets


def test_bundled_copy_matches_its_checksums() -> None:
    # Given the checksums shipped with the bundled datasets
    lines = (datasets.BUNDLED / "SHA256SUMS").read_text().splitlines()
    checked = 0
    for line in lines:
        digest, name = line.split(maxsplit=1)
        name = name.lstrip("*")
        if name.endswith("make_datasets.py"):
            continue  # the generator stays in the shared folder
        # Then every listed file is there with the listed content
        assert hashlib.sha256((datasets.BUNDLED / name).read_bytes()).hexdigest() == digest, name
        checked += 1
    assert checked > 200


def test_without_a_shared_folder_the_bundled_copy_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a shared folder that holds no datasets
    monkeypatch.setenv("SERVAL_SHARED_DIR", str(tmp_path))
    # Then the repository's copy is used, and it has the demo project's images and the text manifest
    assert datasets.shared_datasets() is None
    assert datasets.datasets_dir() == datasets.BUNDLED
    assert len(list((datasets.BUNDLED / "images" / "shapes").glob("*.png"))) == 30
    assert (datasets.BUNDLED / "manifests" / "text.jsonl").is_file()


def test_a_shared_folder_takes_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a shared folder with a datasets folder in it
    (tmp_path / "datasets").mkdir()
    monkeypatch.setenv("SERVAL_SHARED_DIR", str(tmp_path))
    # Then it is the one used
    assert datasets.datasets_dir() == tmp_path / "datasets"
