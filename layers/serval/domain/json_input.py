"""Reading JSON from outside (request bodies, manifest lines): what Python's ``json`` lets through
and Serval refuses.

``json.loads`` accepts ``NaN``, ``Infinity`` and ``-Infinity`` (not JSON, and an export that
ships them is not JSON either), turns ``1e400`` into infinity, raises a bare ``ValueError`` on an
integer of more than 4,300 digits and a ``RecursionError`` on deep nesting. :func:`loads` refuses
each of them with a named error, and refuses numbers DynamoDB cannot store, so they never reach
a model, a table or a 500.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

from serval.errors import JsonTooDeep, MalformedJson, NonFiniteNumber, NumberOutOfRange

MAX_DEPTH = 32  # objects and arrays inside each other; label configs and results need < 10
MAX_DIGITS = 38  # DynamoDB numbers keep 38 significant digits
MAX_EXPONENT = 125  # DynamoDB numbers lie within 1e-130 .. 9.99e125 in magnitude
MIN_EXPONENT = -130


def _non_finite(constant: str) -> Any:
    raise NonFiniteNumber(
        f"{constant} is not a number JSON allows; send a finite number or null",
        details={"value": constant},
    )


def _out_of_range(text: str) -> NumberOutOfRange:
    shown = text if len(text) <= 40 else f"{text[:20]}…({len(text)} characters)"
    return NumberOutOfRange(
        f"numbers may have at most {MAX_DIGITS} digits and lie within 1e{MIN_EXPONENT}..1e{MAX_EXPONENT}",
        details={"value": shown},
    )


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise _out_of_range(text)
    return int(text)


def _float(text: str) -> float:
    exact = Decimal(text)  # json hands over number literals only
    value = float(text)
    if exact and not math.isfinite(value):
        raise _out_of_range(text)
    if exact and not MIN_EXPONENT <= exact.adjusted() <= MAX_EXPONENT:
        raise _out_of_range(text)
    return value


def check_depth(value: Any, max_depth: int = MAX_DEPTH) -> None:
    """Refuse containers nested deeper than ``max_depth`` (walked without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        if depth > max_depth:
            raise JsonTooDeep(
                f"JSON may nest objects and arrays at most {max_depth} deep", details={"max_depth": max_depth}
            )
        stack.extend((child, depth + 1) for child in children)


def loads(text: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse one JSON document, refusing what :mod:`this module <serval.domain.json_input>` names."""
    try:
        value = json.loads(text, parse_constant=_non_finite, parse_int=_int, parse_float=_float)
    except RecursionError:
        raise JsonTooDeep(
            f"JSON may nest objects and arrays at most {max_depth} deep", details={"max_depth": max_depth}
        ) from None
    except json.JSONDecodeError as exc:
        raise MalformedJson(
            "the body is not valid JSON",
            details={"line": exc.lineno, "column": exc.colno, "reason": exc.msg},
        ) from None
    except UnicodeDecodeError as exc:
        raise MalformedJson("the body is not UTF-8", details={"position": exc.start}) from None
    check_depth(value, max_depth)
    return value
