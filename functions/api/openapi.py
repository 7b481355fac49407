"""`python -m api.openapi` prints the API's OpenAPI document (make openapi)."""

from __future__ import annotations

import json

from api.handler import openapi_json

if __name__ == "__main__":
    print(json.dumps(json.loads(openapi_json()), indent=2, sort_keys=True))
