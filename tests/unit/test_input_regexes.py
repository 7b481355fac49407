"""Input is validated with whole-string matches: Python's ``$`` also matches before a final newline.

``re.match(r"^[a-z]+$", "abc\\n")`` succeeds, so a name or id ending in a newline passed every
check that anchored with ``$``. Pydantic's ``pattern=`` runs on Rust's regex engine, where ``$``
is the end of the text; Python's ``re`` needs ``fullmatch`` (or ``\\Z``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pydantic import ValidationError

from serval.errors import NotFound
from serval.logic import users
from serval.logic.uploads import UploadRequest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [p for d in ("layers", "functions", "infra") for p in (ROOT / d).rglob("*.py")]
RE_CALLS = {"compile", "match", "search", "fullmatch"}


def _dollar_anchored(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in RE_CALLS or not (
            isinstance(node.func.value, ast.Name) and node.func.value.id == "re"
        ):
            continue
        pattern = node.args[0] if node.args else None
        if isinstance(pattern, ast.Constant) and isinstance(pattern.value, str):
            text = pattern.value
            if text.endswith("$") and not text.endswith("\\$"):
                found.append((node.lineno, text))
    return found


def test_no_python_regex_in_the_code_anchors_with_dollar() -> None:
    # Given every Python source of the service / Then no re pattern ends with a bare "$"
    offenders = {
        f"{path.relative_to(ROOT)}:{line}": text
        for path in SOURCES
        for line, text in _dollar_anchored(ast.parse(path.read_text(), str(path)))
    }
    assert offenders == {}


@pytest.mark.parametrize("filename", ["a.png\n", "batch/a.png\n", "a\n.png", "a.png\r", "folder\n/a.png"])
def test_upload_filenames_with_line_breaks_are_refused(filename: str) -> None:
    with pytest.raises(ValidationError, match="use folder/file names"):
        UploadRequest(filename=filename, content_type="image/png")


def test_a_user_id_with_a_trailing_newline_is_not_looked_up(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a directory miss for "abc\n" / Then it is not a Cognito id and is never searched for
    def search(sub: str) -> None:
        raise AssertionError(f"searched Cognito for {sub!r}")

    monkeypatch.setattr(users.cognito, "find_by_sub", search)
    with pytest.raises(NotFound):
        users.adopt("3f1c0b5e-2d7a-4c1e-9a53-0b6f7d2c9e11\n")
