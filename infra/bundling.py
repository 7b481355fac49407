"""Asset bundling without Docker (ARCHITECTURE §3b).

The Lambda layer is built by :class:`LayerBundler`, a CDK ``ILocalBundling``: it
pip-installs ``layers/requirements.txt`` for the Lambda platform (manylinux
wheels for the target architecture and Python version, never sdists) and copies
the ``serval`` package next to the dependencies. CDK never falls back to Docker:
the ``image`` in :func:`layer_bundling_options` exists only because the API
requires one.

The pip result depends only on the requirements file and the target platform, so
it is cached under ``cdk.out/.bundle-cache/<sha256>``. Repeated synths (tests,
``make synth`` for each environment) copy the cached tree instead of downloading
again. ``make clean`` removes the cache together with ``cdk.out``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

from infra.spec import ARCHITECTURE, FUNCTIONS_SRC, LAYER_SRC, PYTHON_RUNTIME, ROOT

REQUIREMENTS = LAYER_SRC / "requirements.txt"
PACKAGE = LAYER_SRC / "serval"
CACHE_ROOT = ROOT / "cdk.out" / ".bundle-cache"

# Lambda platform the wheels are chosen for, derived from the spec's runtime and architecture.
_PIP_PLATFORMS = {"arm64": "manylinux2014_aarch64", "x86_64": "manylinux2014_x86_64"}
PIP_PLATFORM = _PIP_PLATFORMS[ARCHITECTURE]
PIP_PYTHON_VERSION = PYTHON_RUNTIME.removeprefix("python")  # "python3.13" -> "3.13"

# Never shipped in a function or layer zip.
ASSET_EXCLUDES = ["**/__pycache__", "**/*.pyc", "**/tests", "**/.pytest_cache", "**/.mypy_cache"]


def _pip_flags() -> list[str]:
    return [
        "--platform",
        PIP_PLATFORM,
        "--only-binary=:all:",
        "--python-version",
        PIP_PYTHON_VERSION,
        "--implementation",
        "cp",
    ]


def requirements_key(requirements: Path = REQUIREMENTS) -> str:
    """Cache key: the requirements file's content plus the target platform flags."""
    digest = hashlib.sha256(requirements.read_bytes())
    digest.update(" ".join(_pip_flags()).encode())
    return digest.hexdigest()


def _pip_command() -> list[str]:
    """A pip to run: this interpreter's, else the ``python3`` on PATH (the Makefile needs it too)."""
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    python3 = shutil.which("python3")
    if python3 is None:
        raise RuntimeError("local layer bundling needs pip: no pip module here and no python3 on PATH")
    return [python3, "-m", "pip"]


def install_requirements(requirements: Path, cache_root: Path = CACHE_ROOT) -> Path:
    """pip-install ``requirements`` for the Lambda platform, once per content hash.

    Returns the cached ``site-packages``-like directory. The install goes to a
    temporary sibling first and is renamed into place, so a concurrent synth
    never sees a half-written cache entry.
    """
    target = cache_root / requirements_key(requirements)
    if target.is_dir():
        return target
    cache_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".pip-", dir=cache_root))
    try:
        subprocess.run(
            [
                *_pip_command(),
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-warn-conflicts",
                "--no-compile",
                "--requirement",
                str(requirements),
                *_pip_flags(),
                "--target",
                str(staging),
            ],
            check=True,
            env={**os.environ, "PIP_NO_INPUT": "1", "PIP_ROOT_USER_ACTION": "ignore"},
        )
        shutil.rmtree(staging / "bin", ignore_errors=True)  # console scripts are useless in a layer
        try:
            staging.rename(target)
        except OSError:
            if not target.is_dir():  # lost a race only if the winner left a complete entry
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


@jsii.implements(ILocalBundling)
class LayerBundler:
    """Builds the layer's ``python/`` tree on this machine: pinned deps plus ``serval``."""

    def __init__(
        self,
        requirements: Path = REQUIREMENTS,
        package: Path = PACKAGE,
        cache_root: Path = CACHE_ROOT,
    ) -> None:
        self._requirements = requirements
        self._package = package
        self._cache_root = cache_root

    def try_bundle(self, output_dir: str, *args: Any, **options: Any) -> bool:
        python_dir = Path(output_dir) / "python"
        deps = install_requirements(self._requirements, self._cache_root)
        shutil.copytree(deps, python_dir, dirs_exist_ok=True)
        shutil.copytree(
            self._package,
            python_dir / self._package.name,
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "tests"),
        )
        return True


def layer_bundling_options() -> BundlingOptions:
    return BundlingOptions(
        # Required by the API, never pulled: LayerBundler always bundles locally.
        image=DockerImage.from_registry("unused-local-bundling"),
        local=LayerBundler(),
    )


def layer_code() -> lambda_.Code:
    """The layer asset. Its hash covers ``layers/`` (requirements and package source)."""
    return lambda_.Code.from_asset(
        str(LAYER_SRC),
        bundling=layer_bundling_options(),
        exclude=ASSET_EXCLUDES,
    )


def function_code() -> lambda_.Code:
    """One code asset for every handler: the ``functions/`` tree (handlers like ``api.handler.handler``)."""
    return lambda_.Code.from_asset(str(FUNCTIONS_SRC), exclude=ASSET_EXCLUDES)
