"""Tokens this server issues and checks, and the identity endpoints that issue them.

Two login routes, as ``real-clients.md`` describes them:

* **service principal**: ``GET /{tenant}/v2.0/.well-known/openid-configuration`` then
  ``POST /{tenant}/oauth2/v2.0/token`` (``grant_type=client_credentials``), checking the client secret;
* **managed identity**: ``GET /msi/token`` (and IMDS's ``/metadata/identity/oauth2/token`` path, where
  ``AZURE_POD_IDENTITY_AUTHORITY_HOST`` sends MSAL's fallback), checking that ``X-IDENTITY-HEADER`` carries the
  client secret.

Access tokens are JWTs signed with HS256 by a key kept in the data dir, with an expiry; ARM routes accept only
those. They carry ``tid`` because ``az`` reads it from managed-identity tokens.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from scaleset.api.tls import write_private

TOKEN_LIFETIME = 3600
DEFAULT_RESOURCE = "https://management.core.windows.net/"


@dataclass(frozen=True)
class Identity:
    tenant: str
    subscription: str
    client_id: str
    secret: str
    signing_key: bytes

    def issue(self, *, resource: str, subject: str, now: float | None = None) -> tuple[str, int]:
        """A signed access token and its expiry (Unix seconds)."""
        issued = int(time.time() if now is None else now)
        expires = issued + TOKEN_LIFETIME
        claims = {
            "aud": resource,
            "iss": f"https://sts.scaleset.local/{self.tenant}/",
            "iat": issued,
            "nbf": issued - 60,
            "exp": expires,
            "tid": self.tenant,
            "oid": subject,
            "appid": subject,
            "sub": subject,
        }
        return jwt.encode(claims, self.signing_key, algorithm="HS256"), expires

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims; raises jwt.InvalidTokenError for anything not issued here or expired."""
        claims: dict[str, Any] = jwt.decode(
            token, self.signing_key, algorithms=["HS256"], options={"verify_aud": False, "require": ["exp", "tid"]}
        )
        return claims

    def secret_matches(self, offered: str | None) -> bool:
        return offered is not None and hmac.compare_digest(offered.encode(), self.secret.encode())


def load_identity(data_dir: Path, *, tenant: str, subscription: str, client_id: str) -> Identity:
    """The client secret and signing key from the data dir, created (mode 0600) on first start."""
    secret_file = data_dir / "client-secret"
    key_file = data_dir / "signing-key"
    if not secret_file.exists():
        write_private(secret_file, secrets.token_urlsafe(32).encode())
    if not key_file.exists():
        write_private(key_file, secrets.token_bytes(32))
    return Identity(
        tenant=tenant,
        subscription=subscription,
        client_id=client_id,
        secret=secret_file.read_text().strip(),
        signing_key=key_file.read_bytes(),
    )


def openid_configuration(base: str, tenant: str) -> dict[str, Any]:
    root = f"{base}/{tenant}"
    return {
        "issuer": f"{root}/v2.0",
        "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
        "token_endpoint": f"{root}/oauth2/v2.0/token",
        "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
        "jwks_uri": f"{root}/discovery/v2.0/keys",
        "response_types_supported": ["code", "id_token", "token"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "tenant_region_scope": "NA",
    }


def resource_from_scope(scope: str | None) -> str:
    """``https://management.core.windows.net//.default`` -> ``https://management.core.windows.net/``."""
    if not scope:
        return DEFAULT_RESOURCE
    first = scope.split()[0]
    return first.removesuffix(".default").removesuffix("/") + "/" if first.endswith(".default") else first
