"""API Gateway's Cognito user pool authorizer (REST API), against the local user pool.

It accepts what the AWS authorizer accepts and nothing else:
- the ``Authorization`` header holds the token, bare or after ``Bearer``;
- an RS256 signature by a key of the pool's JWKS (fetched once from moto and cached);
- ``iss`` is the pool's issuer, ``https://cognito-idp.<region>.amazonaws.com/<pool id>``,
  the same value moto puts in its tokens;
- ``exp`` is in the future;
- without authorization scopes on the API (``spec.api.authorization_scopes``, as
  now), an **id token** (``token_use`` "id") whose ``aud`` is the app client; with
  scopes, an **access token** whose ``client_id`` is the app client and whose
  ``scope`` holds one of them. The AWS authorizer rejects an access token when the
  method has no scopes, so this one does too.

Claims reach the function as API Gateway REST renders them: every value a string,
lists comma-joined (``cognito:groups`` = ``"admin,manager"``), ``exp`` and ``iat``
as Java dates (``"Mon Apr 17 23:12:49 UTC 2017"``), booleans ``"true"``/``"false"``.

moto signs every pool with one static key that ships with moto: this is for the
local stack only.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

JAVA_DATE_CLAIMS = ("exp", "iat")


def render_claim(name: str, value: Any) -> str:
    """A JWT claim as API Gateway REST puts it into ``requestContext.authorizer.claims``."""
    if name in JAVA_DATE_CLAIMS and isinstance(value, (int, float)) and not isinstance(value, bool):
        return time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime(value))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(render_claim(name, item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def bearer_token(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, rest = header.strip().partition(" ")
    token = rest.strip() if scheme.lower() == "bearer" else header.strip()
    return token or None


@dataclass
class CognitoAuthorizer:
    issuer: str
    jwks_url: str
    client_ids: Collection[str]
    authorization_scopes: tuple[str, ...] = ()
    _jwks: dict[str, Any] | None = field(default=None, init=False, repr=False)
    _keys: KeySet | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def jwks(self) -> dict[str, Any]:
        """The pool's public JSON Web Key Set, as moto serves it (fetched once)."""
        with self._lock:
            if self._jwks is None:
                with urllib.request.urlopen(self.jwks_url, timeout=10) as response:
                    self._jwks = json.loads(response.read())
            return self._jwks

    def keys(self) -> KeySet:
        if self._keys is None:
            self._keys = KeySet.import_key_set(self.jwks())  # type: ignore[arg-type]
        return self._keys

    def _registry(self) -> jwt.JWTClaimsRegistry:
        common: dict[str, Any] = {
            "iss": {"essential": True, "value": self.issuer},
            "exp": {"essential": True},
        }
        if self.authorization_scopes:
            return jwt.JWTClaimsRegistry(
                **common,
                token_use={"essential": True, "value": "access"},
                client_id={"essential": True, "values": list(self.client_ids)},
            )
        return jwt.JWTClaimsRegistry(
            **common,
            token_use={"essential": True, "value": "id"},
            aud={"essential": True, "values": list(self.client_ids)},
        )

    def claims(self, authorization: str | None) -> dict[str, str] | None:
        """The rendered claims of a valid token in the header; None means 401 Unauthorized."""
        token = bearer_token(authorization)
        if token is None:
            return None
        keys = self.keys()
        try:
            decoded = jwt.decode(token, keys, algorithms=["RS256"])
            self._registry().validate(decoded.claims)
        except (JoseError, ValueError, KeyError, TypeError):  # any malformed or invalid token
            return None
        if self.authorization_scopes:
            granted = str(decoded.claims.get("scope", "")).split()
            if not set(granted) & set(self.authorization_scopes):
                return None
        return {name: render_claim(name, value) for name, value in decoded.claims.items()}
