"""Identity and subscription endpoints: what ``az login`` and azure-identity need before any ARM call."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response

from scaleset.api.auth import DEFAULT_RESOURCE, TOKEN_LIFETIME, openid_configuration, resource_from_scope
from scaleset.api.http import ApiError, json_response
from scaleset.api.runtime import Runtime


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


async def openid(request: Request, runtime: Runtime, tenant: str) -> Response:
    return json_response(request, openid_configuration(base_url(request), tenant))


async def token(request: Request, runtime: Runtime, tenant: str) -> Response:
    """``POST /{tenant}/oauth2/v2.0/token``: client credentials, checked against the server's client secret."""
    form = parse_qs((await request.body()).decode(errors="replace"))
    grant = (form.get("grant_type") or [""])[0]
    if grant != "client_credentials":
        raise ApiError(400, "unsupported_grant_type", f"Grant type '{grant}' is not supported; use client_credentials.")
    client = (form.get("client_id") or [""])[0]
    offered = form.get("client_secret") or []
    if not runtime.identity.secret_matches(offered[0] if offered else None):
        return json_response(
            request,
            {
                "error": "invalid_client",
                "error_description": "AADSTS7000215: Invalid client secret provided. Use the secret in the data dir "
                "(client-secret).",
            },
            401,
        )
    scopes = form.get("scope") or []
    resource = resource_from_scope(scopes[0] if scopes else None)
    access, expires = runtime.identity.issue(resource=resource, subject=client or runtime.identity.client_id)
    lifetime = expires - int(time.time())
    return json_response(
        request, {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": access}
    )


async def msi_token(request: Request, runtime: Runtime) -> Response:
    """Managed identity (App Service flavour, and IMDS's path): the identity header must carry the secret."""
    offered = request.headers.get("x-identity-header") or request.headers.get("secret")
    if not runtime.identity.secret_matches(offered):
        raise ApiError(
            401,
            "AuthenticationFailed",
            "The X-IDENTITY-HEADER header must carry the server's client secret (IDENTITY_HEADER).",
        )
    resource = request.query_params.get("resource") or DEFAULT_RESOURCE
    access, expires = runtime.identity.issue(resource=resource, subject=runtime.identity.client_id)
    return json_response(
        request,
        {
            "access_token": access,
            "expires_on": str(expires),
            "expires_in": str(TOKEN_LIFETIME),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": runtime.identity.client_id,
        },
    )


def subscription_body(runtime: Runtime) -> dict[str, Any]:
    sub = runtime.identity.subscription
    return {
        "id": f"/subscriptions/{sub}",
        "subscriptionId": sub,
        "tenantId": runtime.identity.tenant,
        "displayName": "scaleset emulated subscription",
        "state": "Enabled",
        "subscriptionPolicies": {
            "locationPlacementId": "Public_2014-09-01",
            "quotaId": "scaleset",
            "spendingLimit": "Off",
        },
        "authorizationSource": "RoleBased",
    }


def check_subscription(runtime: Runtime, subscription: str) -> None:
    if subscription.lower() != runtime.identity.subscription.lower():
        raise ApiError(404, "SubscriptionNotFound", f"The subscription '{subscription}' could not be found.")


async def list_subscriptions(request: Request, runtime: Runtime) -> Response:
    return json_response(request, {"value": [subscription_body(runtime)]})


async def get_subscription(request: Request, runtime: Runtime, subscription: str) -> Response:
    check_subscription(runtime, subscription)
    return json_response(request, subscription_body(runtime))


async def metadata_endpoints(request: Request, runtime: Runtime) -> Response:
    """Cloud metadata, so ``az cloud register --endpoint-resource-manager URL`` needs no other flag.

    As ARM does: api-version 2019-05-01 and older answer a list of clouds (what ``ARM_CLOUD_METADATA_URL`` reads),
    later ones (``az cloud register`` asks for 2022-09-01) the one cloud object.
    """
    base = base_url(request)
    cloud: dict[str, Any] = {
        "name": "scaleset",
        "portal": base,
        "resourceManager": f"{base}/",
        "authentication": {
            "loginEndpoint": base,
            "audiences": ["https://management.core.windows.net/", "https://management.azure.com/"],
            "tenant": "common",
            "identityProvider": "AAD",
        },
        "graph": f"{base}/",
        "graphAudience": f"{base}/",
        "media": f"{base}/",
        "sqlManagement": f"{base}/",
        "microsoftGraphResourceId": f"{base}/",
        "appInsightsResourceId": f"{base}/",
        "appInsightsTelemetryChannelResourceId": f"{base}/",
        "attestationResourceId": f"{base}/",
        "synapseAnalyticsResourceId": f"{base}/",
        "logAnalyticsResourceId": f"{base}/",
        "ossrdbmsResourceId": f"{base}/",
        "batch": f"{base}/",
        "activeDirectoryDataLake": f"{base}/",
        "vmImageAliasDoc": f"{base}/_scaleset/image-aliases.json",
        "suffixes": {
            "storage": "core.windows.net",
            "keyVaultDns": "vault.azure.net",
            "sqlServerHostname": "database.windows.net",
            "acrLoginServer": "azurecr.io",
        },
    }
    version = request.query_params.get("api-version") or ""
    return json_response(request, [cloud] if version and version <= "2019-05-01" else cloud)
