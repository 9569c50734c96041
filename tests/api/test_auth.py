"""Both login routes of the recipe issue tokens that ARM routes accept; everything else is a 401 in ARM's envelope."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
import requests
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientSecretCredential, ManagedIdentityCredential
from azure.mgmt.compute import ComputeManagementClient
from tests.api.conftest import Server, assert_arm_error

ARM_SCOPE = "https://management.azure.com/.default"


def subscriptions_with(server: Server, token: str) -> requests.Response:
    return server.session(token=token).get(server.url("/subscriptions", "2022-12-01"), timeout=10)


def service_principal_token(server: Server, secret: str) -> requests.Response:
    return server.anonymous().post(
        f"{server.base}/{server.tenant}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "client_id": server.client_id, "client_secret": secret},
        timeout=10,
    )


def msi_token(server: Server, header: str | None, path: str = "/msi/token") -> requests.Response:
    headers = {"Metadata": "true"} | ({"X-IDENTITY-HEADER": header} if header is not None else {})
    return server.anonymous().get(
        f"{server.base}{path}",
        params={"api-version": "2019-08-01", "resource": "https://management.core.windows.net/"},
        headers=headers,
        timeout=10,
    )


def test_service_principal_route(server: Server) -> None:
    config = server.anonymous().get(f"{server.base}/{server.tenant}/v2.0/.well-known/openid-configuration", timeout=10)
    assert config.status_code == 200
    assert config.json()["token_endpoint"] == f"{server.base}/{server.tenant}/oauth2/v2.0/token"
    assert config.json()["issuer"].startswith(server.base)

    issued = service_principal_token(server, server.secret)
    assert issued.status_code == 200
    body = issued.json()
    assert body["token_type"] == "Bearer" and 3000 < body["expires_in"] <= 3600
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["tid"] == server.tenant and claims["exp"] > time.time()
    answer = subscriptions_with(server, body["access_token"])
    assert answer.status_code == 200
    assert [s["subscriptionId"] for s in answer.json()["value"]] == [server.subscription]

    refused = service_principal_token(server, server.secret + "-wrong")
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    assert refused.headers.get("x-ms-request-id") and "access_token" not in refused.json()
    assert service_principal_token(server, "").status_code == 401


def test_managed_identity_route(server: Server) -> None:
    for path in ("/msi/token", "/metadata/identity/oauth2/token"):
        issued = msi_token(server, server.secret, path)
        assert issued.status_code == 200, issued.text
        body = issued.json()
        assert body["token_type"] == "Bearer" and body["resource"] == "https://management.core.windows.net/"
        assert int(body["expires_on"]) > time.time()
        assert jwt.decode(body["access_token"], options={"verify_signature": False})["tid"] == server.tenant
        assert subscriptions_with(server, body["access_token"]).status_code == 200

        assert_arm_error(msi_token(server, "not-the-secret", path), 401, "AuthenticationFailed")
        assert_arm_error(msi_token(server, None, path), 401, "AuthenticationFailed")


def test_real_azure_identity_credentials(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = ClientSecretCredential(
        server.tenant,
        server.client_id,
        server.secret,
        authority=server.base,
        disable_instance_discovery=True,
        connection_verify=str(server.ca),
    )
    assert subscriptions_with(server, secret.get_token(ARM_SCOPE).token).status_code == 200

    monkeypatch.setenv("IDENTITY_ENDPOINT", f"{server.base}/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", server.secret)
    managed = ManagedIdentityCredential(connection_verify=str(server.ca))
    assert subscriptions_with(server, managed.get_token(ARM_SCOPE).token).status_code == 200


def forged(server: Server, key: bytes, **changes: Any) -> str:
    now = int(time.time())
    claims = {"aud": "https://management.azure.com/", "iat": now, "nbf": now - 60, "exp": now + 3600}
    claims |= {"tid": server.tenant, "oid": server.client_id} | changes
    return jwt.encode(claims, key, algorithm="HS256")


def test_arm_routes_refuse_anything_but_a_valid_token_of_this_server(server: Server) -> None:
    target = server.url(f"/subscriptions/{server.subscription}/resourcegroups")
    anonymous = server.anonymous()
    assert_arm_error(anonymous.get(target, timeout=10), 401, "AuthenticationFailed")
    assert_arm_error(anonymous.get(target, headers={"Authorization": "Basic dXNlcjpwdw=="}, timeout=10), 401)
    assert_arm_error(anonymous.get(target, headers={"Authorization": "Bearer"}, timeout=10), 401)
    own_key = (server.data_dir / "signing-key").read_bytes()
    refusals = {
        "not-a-jwt": "InvalidAuthenticationToken",
        forged(server, b"a key that is not this server's key, 32+ bytes"): "InvalidAuthenticationToken",
        forged(server, own_key, exp=int(time.time()) - 600): "ExpiredAuthenticationToken",
        jwt.encode({"tid": server.tenant, "exp": int(time.time()) + 600}, None, algorithm="none"): (
            "InvalidAuthenticationToken"
        ),
    }
    for token, code in refusals.items():
        answer = anonymous.get(target, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert_arm_error(answer, 401, code)
    assert subscriptions_with(server, forged(server, own_key)).status_code == 200  # the key is what counts
    # the emulator's own routes need the token too; the identity routes do not
    assert_arm_error(anonymous.get(f"{server.base}/_scaleset/faults", timeout=10), 401)
    assert anonymous.get(f"{server.base}/metadata/endpoints?api-version=2022-09-01", timeout=10).status_code == 200


def test_the_sdk_maps_401_to_client_authentication_error(server: Server) -> None:
    class Foreign:
        def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            return AccessToken("fake-token", int(time.time()) + 3600)

    client = ComputeManagementClient(
        Foreign(), server.subscription, base_url=server.base, connection_verify=str(server.ca)
    )
    with pytest.raises(ClientAuthenticationError) as refused:
        client.virtual_machine_scale_sets.get("any", "web")
    assert refused.value.status_code == 401
    assert refused.value.error is not None and refused.value.error.code == "InvalidAuthenticationToken"
