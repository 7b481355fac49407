"""The OpenAPI document: committed copy in sync, every route guarded or declared public."""

from __future__ import annotations

import json
import subprocess
import sys

from infra import config, spec
from tests.conftest import ROOT

METHODS = {"get", "post", "put", "patch", "delete"}


def _document() -> dict[str, object]:
    from api.handler import openapi_json

    return json.loads(openapi_json())  # type: ignore[no-any-return]


def test_docs_openapi_json_is_identical_to_make_openapi() -> None:
    # Given the document `make openapi` prints
    printed = subprocess.run(
        [sys.executable, "-m", "api.openapi"],
        cwd=ROOT,
        env={"PYTHONPATH": "layers:functions", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # Then the committed copy is byte-identical (regenerate with `make openapi > docs/openapi.json`)
    assert (ROOT / "docs" / "openapi.json").read_text() == printed


def test_every_operation_declares_an_action_or_is_public_in_the_spec() -> None:
    public = set(spec.build(config.load("local"), "1", "us-east-1").api.public_routes)
    document = _document()
    for path, operations in document["paths"].items():  # type: ignore[attr-defined]
        for method, operation in operations.items():
            if method not in METHODS:
                continue
            if (method.upper(), path) in public:
                assert not operation.get("security"), f"{method} {path} is public but declares security"
            else:
                assert operation.get("security") == [{"cognito": []}], f"{method} {path} is unguarded"
                assert operation.get("x-serval-action"), f"{method} {path} declares no action"


def test_every_operation_documents_its_error_statuses_with_the_envelope() -> None:
    # Given the OpenAPI document
    document = _document()
    paths: dict[str, dict[str, dict[str, object]]] = document["paths"]  # type: ignore[assignment]
    envelope = {"$ref": "#/components/schemas/ErrorEnvelope"}
    for path, item in paths.items():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            responses: dict[str, dict[str, object]] = operation["responses"]  # type: ignore[assignment]
            errors = {int(s) for s in responses if int(s) >= 400}
            # Then each operation lists the statuses it can answer
            expected = {429}
            if "requestBody" in operation:
                expected |= {400, 413, 415, 422}
            if operation.get("parameters"):
                expected.add(422)
            if operation.get("security"):
                expected |= {401, 403}
            if "{" in path:
                expected.add(404)
            if method != "get":
                expected.add(409)
            assert errors == expected, (method, path)
            # And each error has the envelope's schema
            for status in errors:
                content = responses[str(status)]["content"]
                assert content == {"application/json": {"schema": envelope}}, (method, path, status)
    schemas: dict[str, object] = document["components"]["schemas"]  # type: ignore[index]
    assert "HTTPValidationError" not in schemas
    assert schemas["ErrorEnvelope"]["required"] == ["error"]  # type: ignore[index]
