"""The README's roles tables state the policy the tests enforce (tests/policy.py)."""

from __future__ import annotations

import re

from tests import policy
from tests.conftest import ROOT

ROW = re.compile(r"^\| `(?P<action>[a-z:]+)` \| [^|]+ \|(?P<cells>( [✓·] \|)+)\s*$")


def _rows() -> dict[str, list[bool]]:
    rows = {}
    for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        match = ROW.match(line)
        if match:
            rows[match["action"]] = [c.strip() == "✓" for c in match["cells"].strip(" |").split("|")]
    return rows


def test_readme_tables_match_the_policy() -> None:
    rows = _rows()
    expected = {a: [r in roles for r in [*policy.GLOBAL_ROLES, None]] for a, roles in policy.GLOBAL.items()}
    expected |= {a: [r in roles for r in policy.PROJECT_ROLES] for a, roles in policy.PROJECT.items()}
    assert rows == expected
