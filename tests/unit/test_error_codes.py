"""The error codes the README names are the codes the API and the gateway answer with, both ways."""

from __future__ import annotations

import inspect
import re
from http import HTTPStatus

from api import handler
from serval import errors
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
TABLE_ROW = re.compile(r"^\| (?P<status>[45](?:\d\d|xx)) \| (?P<codes>.+) \|$")
NAMED_IN_TEXT = re.compile(r"\b(?P<status>[45]\d\d) `(?P<code>[a-z_]+)`")
# codes the handler answers without an exception class of their own
HANDLER_CODES = {"route_not_found": 404}


def _table() -> dict[str, str]:
    """code -> status class ("404", "5xx") of the README's error code table."""
    found: dict[str, str] = {}
    for line in README.splitlines():
        row = TABLE_ROW.match(line)
        if row:
            for code in re.findall(r"`([a-z_]+)`", row["codes"]):
                found[code] = row["status"]
    return found


def _answered() -> dict[str, int]:
    """code -> HTTP status of every error the API or the gateway can answer with."""
    codes: dict[str, int] = dict(HANDLER_CODES)
    for _, cls in inspect.getmembers(errors, inspect.isclass):
        if issubclass(cls, errors.ServalError):
            status = handler._status_of(cls("probe"))
            codes.setdefault(cls.code, status.value)
    for gateway in errors.GATEWAY_ERRORS.values():
        codes.setdefault(gateway.code, gateway.status)
    codes[errors.ServalError.code] = HTTPStatus.INTERNAL_SERVER_ERROR.value
    return codes


def _same_class(documented: str, status: int) -> bool:
    return documented == str(status) or (documented.endswith("xx") and str(status)[0] == documented[0])


def test_every_code_the_readme_names_is_answered_with_its_status() -> None:
    # Given every code the API and the gateway answer with
    answered = _answered()
    # When the README names a code, in its table or in its text ("409 `last_manager`")
    named = _table() | {m["code"]: m["status"] for m in NAMED_IN_TEXT.finditer(README)}
    # Then the code exists, with the status the README gives it
    assert named, "the README names no error codes"
    for code, status in named.items():
        assert code in answered, f"the README names {code}, which nothing answers with"
        assert _same_class(status, answered[code]), f"{code}: README says {status}, code {answered[code]}"


def test_every_code_answered_is_in_the_readme_table() -> None:
    # Given the README's table and the codes answered
    table, answered = _table(), _answered()
    # Then each answered code is documented there, under its status
    missing = sorted(set(answered) - set(table))
    assert not missing, f"add these codes to the README's error code table: {missing}"
    for code, status in answered.items():
        assert _same_class(table[code], status), f"{code}: README table says {table[code]}, code {status}"


def test_the_gateway_codes_are_the_envelope_codes_the_api_uses() -> None:
    # Then API Gateway's own refusals use the API's codes for the same statuses
    by_type = errors.GATEWAY_ERRORS
    assert (by_type["UNAUTHORIZED"].status, by_type["UNAUTHORIZED"].code) == (401, errors.Unauthorized.code)
    assert by_type["ACCESS_DENIED"].code == errors.Forbidden.code
    assert (by_type["REQUEST_TOO_LARGE"].status, by_type["REQUEST_TOO_LARGE"].code) == (
        413,
        "payload_too_large",
    )
    assert (by_type["THROTTLED"].status, by_type["THROTTLED"].code) == (429, errors.Throttled.code)
    assert by_type["INTEGRATION_TIMEOUT"].code == "gateway_timeout"
    assert by_type["DEFAULT_5XX"].code == "internal_error"
    for gateway in by_type.values():
        assert gateway.body() == {
            "error": {"code": gateway.code, "message": gateway.message, "details": None}
        }
