"""Where the demo and test media live: the shared datasets when they are there, else the repo's copy.

The repository ships a copy of the shared datasets (``infra/local/demo/datasets``, 3.6 MB,
with their README and checksums), so a clone works on its own. ``$SERVAL_SHARED_DIR`` (a folder
holding ``datasets/``) or a ``shared/`` folder next to the repository takes precedence, so an
updated shared set is used without copying it in.
"""

from __future__ import annotations

import os
from pathlib import Path

from infra.spec import ROOT

BUNDLED = ROOT / "infra" / "local" / "demo" / "datasets"


def shared_datasets() -> Path | None:
    """The shared ``datasets/`` folder named by ``$SERVAL_SHARED_DIR`` or next to the repo, if present."""
    explicit = os.environ.get("SERVAL_SHARED_DIR")
    root = Path(explicit) if explicit else ROOT.parent / "shared"
    found = root / "datasets"
    return found if found.is_dir() else None


def datasets_dir() -> Path:
    """The datasets to use: the shared ones when present, else the copy this repository ships."""
    return shared_datasets() or BUNDLED
