"""Every function's handler is traced with Powertools' Tracer (X-Ray is on for every function)."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from infra.config import load
from infra.spec import build

SPEC = build(load("dev"), "123456789012", "us-east-1")


def _wrappers(fn: Any) -> list[str]:
    """Where ``fn`` and every function it wraps were defined (functools.wraps copies names, not
    code: a decorator's wrapper keeps its own code's qualified name)."""
    names = []
    while fn is not None:
        names.append(fn.__code__.co_qualname)
        fn = getattr(fn, "__wrapped__", None)
    return names


@pytest.mark.parametrize("function_id", sorted(SPEC.functions))
def test_the_handler_is_wrapped_by_the_tracer(function_id: str) -> None:
    fs = SPEC.functions[function_id]
    entrypoint = getattr(importlib.import_module(fs.module), fs.entrypoint)
    assert any("capture_lambda_handler" in name for name in _wrappers(entrypoint)), _wrappers(entrypoint)
