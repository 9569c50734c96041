"""Raw HTTPS for what the SDK cannot express: bad requests, ARM's error envelope and headers, and the
long-running-operation contract (absolute https URLs that this server serves, ``retry-after-ms``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from tests.api.conftest import Recorder, Server, assert_arm_error, scale_set_body, wait_until

APPLICATION_JSON = {"Content-Type": "application/json"}


def wait_operation(arm: requests.Session, url: str) -> dict[str, Any]:
    """Poll an ``Azure-AsyncOperation`` URL (bounded) until the operation ends; its last status document."""

    def ended() -> dict[str, Any] | None:
        answer = arm.get(url, timeout=10)
        assert answer.status_code == 200 and answer.headers.get("x-ms-request-id")
        body: dict[str, Any] = answer.json()
        return body if body["status"] != "InProgress" else None

    result: dict[str, Any] = wait_until(ended, what=f"operation {url}")
    return result


def assert_lro_headers(answer: requests.Response, server: Server, *, location: bool) -> None:
    for header in ("Azure-AsyncOperation", *(("Location",) if location else ())):
        url = answer.headers[header]
        assert url.startswith(server.base + "/subscriptions/"), url
        assert "api-version=" in url
    if not location:
        assert "Location" not in answer.headers
    assert int(answer.headers["retry-after-ms"]) > 0
    assert answer.headers.get("Retry-After", "1") != "0"


@pytest.fixture(scope="module")
def web(server: Server, recorder: Recorder) -> Iterator[str]:
    """A Manual scale set of two, created with raw requests; its path."""
    arm = server.session(recorder)
    assert arm.put(server.url(server.group_path("http")), json={"location": "westus"}, timeout=10).ok
    path = server.vmss_path("http", "web")
    created = arm.put(server.url(path), json=scale_set_body(capacity=2, mode="Manual"), timeout=10)
    assert created.status_code == 201
    assert wait_operation(arm, created.headers["Azure-AsyncOperation"])["status"] == "Succeeded"
    yield path


def test_long_running_operations_follow_arm(server: Server, arm: requests.Session, web: str) -> None:
    # PUT update: 200 with the resource and Azure-AsyncOperation only
    body = arm.get(server.url(web), timeout=10).json()
    updated = arm.put(server.url(web), json={"location": "westus", "sku": {"capacity": 3}}, timeout=10)
    assert updated.status_code == 200 and updated.json()["sku"]["capacity"] == 3
    assert updated.json()["properties"]["provisioningState"] == "Updating"
    assert_lro_headers(updated, server, location=False)
    status = wait_operation(arm, updated.headers["Azure-AsyncOperation"])
    assert status["status"] == "Succeeded" and status["endTime"] >= status["startTime"]
    assert arm.get(server.url(web), timeout=10).json()["properties"] == body["properties"] | {
        "provisioningState": "Succeeded"
    }

    # PATCH: 200 and Azure-AsyncOperation
    patched = arm.patch(server.url(web), json={"sku": {"capacity": 2}}, timeout=10)
    assert patched.status_code == 200
    assert_lro_headers(patched, server, location=False)
    wait_operation(arm, patched.headers["Azure-AsyncOperation"])

    # a POST action: 202, empty, both headers; the Location answers 202 while running, then 200/204
    restart = arm.post(server.url(web + "/restart"), timeout=10)
    assert restart.status_code == 202 and restart.content == b""
    assert_lro_headers(restart, server, location=True)
    running = arm.get(restart.headers["Location"], timeout=10)
    if running.status_code == 202:
        assert running.headers["Location"].startswith(server.base) and int(running.headers["retry-after-ms"]) > 0
    assert wait_operation(arm, restart.headers["Azure-AsyncOperation"])["status"] == "Succeeded"
    done = arm.get(restart.headers["Location"], timeout=10)
    assert done.status_code in (200, 204) and done.content == b""

    # any api-version the real clients send is accepted
    for version in ("2023-09-01", "2024-11-01", "2026-04-01"):
        assert arm.get(server.url(web, version), timeout=10).status_code == 200
    # paths match case-insensitively, as in ARM
    assert arm.get(server.url(web.upper()), timeout=10).status_code == 200


def test_delete_is_202_with_both_headers_then_404(server: Server, arm: requests.Session) -> None:
    assert arm.put(server.url(server.group_path("http-delete")), json={"location": "westus"}, timeout=10).ok
    path = server.vmss_path("http-delete", "gone")
    created = arm.put(server.url(path), json=scale_set_body(capacity=1, mode="Manual"), timeout=10)
    assert_lro_headers(created, server, location=False)
    assert created.json()["properties"]["provisioningState"] == "Creating"
    deleted = arm.delete(server.url(path), timeout=10)
    assert deleted.status_code == 202 and deleted.content == b""
    assert_lro_headers(deleted, server, location=True)
    assert wait_operation(arm, deleted.headers["Azure-AsyncOperation"])["status"] == "Succeeded"
    assert_arm_error(arm.get(server.url(path), timeout=10), 404, "ResourceNotFound")
    assert arm.delete(server.url(path), timeout=10).status_code == 204


def test_bad_bodies(server: Server, arm: requests.Session, web: str) -> None:
    url = server.url(web)
    assert_arm_error(arm.put(url, data="{not json", headers=APPLICATION_JSON, timeout=10), 400, "InvalidRequestContent")
    assert_arm_error(arm.put(url, data=b"\xff\xfe", headers=APPLICATION_JSON, timeout=10), 400, "InvalidRequestContent")
    assert_arm_error(arm.put(url, data='{"a": NaN}', headers=APPLICATION_JSON, timeout=10), 400)
    assert_arm_error(arm.put(url, data="[1, 2]", headers=APPLICATION_JSON, timeout=10), 400, "InvalidRequestContent")
    assert_arm_error(arm.put(url, data="[" * 50_000, headers=APPLICATION_JSON, timeout=10), 400)
    deep = '{"properties": {"deep": ' + '{"x": ' * 500 + "{}" + "}" * 500 + "}}"  # legal JSON, absurdly deep
    assert_arm_error(arm.patch(url, data=deep, headers=APPLICATION_JSON, timeout=10), 400, "InvalidRequestContent")
    assert_arm_error(arm.patch(url, data="", headers=APPLICATION_JSON, timeout=10), 400, "InvalidRequestContent")
    for kind in ("text/plain", "application/xml", "application/x-www-form-urlencoded"):
        answer = arm.put(url, data='{"location": "westus"}', headers={"Content-Type": kind}, timeout=10)
        assert_arm_error(answer, 415, "UnsupportedMediaType")
    assert arm.patch(url, json={}, headers={"Content-Type": "application/json; charset=utf-8"}, timeout=10).ok
    error = assert_arm_error(arm.patch(url, json={"sku": {"capacity": "many"}}, timeout=10), 400, "InvalidParameter")
    assert error["target"] == "sku.capacity"
    assert_arm_error(arm.post(server.url(web + "/manualupgrade"), timeout=10), 400, "InvalidRequestContent")
    assert_arm_error(arm.post(server.url(web + "/manualupgrade"), json={"instanceIds": "0"}, timeout=10), 400)
    assert_arm_error(arm.post(server.url(web + "/restart"), json={"instanceIds": [1.5]}, timeout=10), 400)
    assert_arm_error(arm.get(server.url(web + "/virtualMachines") + "&$filter=name eq 'x'", timeout=10), 400)


def test_instance_ids(server: Server, arm: requests.Session, web: str) -> None:
    for bad in ("abc", "-1", "1e3"):
        error = assert_arm_error(arm.get(server.url(f"{web}/virtualMachines/{bad}"), timeout=10), 400)
        assert error["code"] == "InvalidParameter" and "must be a number" in error["message"]
    assert_arm_error(arm.post(server.url(f"{web}/virtualMachines/abc/restart"), timeout=10), 400, "InvalidParameter")
    assert_arm_error(arm.get(server.url(f"{web}/virtualMachines/7777"), timeout=10), 404, "ResourceNotFound")
    assert_arm_error(arm.get(server.url(f"{web}/virtualMachines/7777/instanceView"), timeout=10), 404)
    assert_arm_error(arm.delete(server.url(f"{web}/virtualMachines/7777"), timeout=10), 404)
    unknown = arm.post(server.url(f"{web}/manualupgrade"), json={"instanceIds": ["0", "7777"]}, timeout=10)
    assert "7777" in assert_arm_error(unknown, 404, "NotFound")["message"]
    mixed = arm.post(server.url(f"{web}/restart"), json={"instanceIds": ["x", "7777"]}, timeout=10)
    assert_arm_error(mixed, 400, "InvalidParameter")  # form is checked before existence


def test_missing_api_version_unknown_routes_and_methods(server: Server, arm: requests.Session, web: str) -> None:
    for path in (web, server.group_path("http"), f"/subscriptions/{server.subscription}"):
        assert_arm_error(arm.get(server.url(path, None), timeout=10), 400, "MissingApiVersionParameter")
    assert_arm_error(arm.get(server.url(web, ""), timeout=10), 400, "MissingApiVersionParameter")

    for path in (
        "/nothing/here",
        f"{web}/noSuchAction",
        f"{web}/virtualMachines/0/noSuchAction",
        f"/subscriptions/{server.subscription}/providers/Microsoft.Network/virtualNetworks",
    ):
        assert_arm_error(arm.get(server.url(path), timeout=10), 404, "NotFound")
    assert_arm_error(arm.get(server.url("/subscriptions/00000000-0000-0000-0000-000000000000"), timeout=10), 404)
    # an encoded slash belongs to the name it is in: it never reaches another route
    for method, path in (("DELETE", f"{web}/virtualMachines/0%2FinstanceView"), ("GET", f"{web}%2FinstanceView")):
        assert_arm_error(arm.request(method, server.url(path), timeout=10), 404, "NotFound")
    # other escapes are decoded in names: http%28x%29 is the group http(x)
    escaped = arm.put(server.url(server.group_path("http%28x%29")), json={"location": "westus"}, timeout=10)
    assert escaped.status_code == 201 and escaped.json()["name"] == "http(x)"
    assert arm.get(server.url(server.group_path("http(x)")), timeout=10).json()["name"] == "http(x)"

    for method, path in (("DELETE", f"{web}/instanceView"), ("POST", web), ("PUT", f"{web}/rollingUpgrades/latest")):
        answer = arm.request(method, server.url(path), json={} if method != "DELETE" else None, timeout=10)
        assert_arm_error(answer, 405, "MethodNotAllowed")
        assert answer.headers["Allow"]
    assert_arm_error(arm.get(server.url(f"{web}/rollingUpgrades/cancel"), timeout=10), 405)
    assert_arm_error(arm.patch(server.url(server.group_path("http")), json={}, timeout=10), 405)


def test_every_answer_has_a_request_id(server: Server, arm: requests.Session, web: str) -> None:
    anonymous = server.anonymous()
    answers = [
        arm.get(server.url(web), timeout=10),
        arm.get(server.url(server.group_path("http")), timeout=10),
        arm.head(server.url(server.group_path("http")), timeout=10),
        arm.get(server.url(f"/subscriptions/{server.subscription}"), timeout=10),
        arm.get(server.url("/subscriptions"), timeout=10),
        arm.get(server.url(f"{web}/nope"), timeout=10),
        anonymous.get(server.url(web), timeout=10),
        anonymous.get(f"{server.base}/{server.tenant}/v2.0/.well-known/openid-configuration", timeout=10),
        anonymous.get(f"{server.base}/msi/token", timeout=10),
        arm.get(f"{server.base}/_scaleset/faults", timeout=10),
    ]
    ids = [a.headers.get("x-ms-request-id") for a in answers]
    assert all(ids) and len(set(ids)) == len(ids)
    assert all(a.status_code < 500 for a in answers)
    echoed = arm.get(server.url(web), headers={"x-ms-client-request-id": "abc-123"}, timeout=10)
    assert echoed.headers["x-ms-correlation-request-id"] == "abc-123"


def test_rolling_upgrade_routes(server: Server, arm: requests.Session, web: str) -> None:
    assert_arm_error(arm.get(server.url(f"{web}/rollingUpgrades/latest"), timeout=10), 404, "NotFound")
    cancel = arm.post(server.url(f"{web}/rollingUpgrades/cancel"), timeout=10)
    error = assert_arm_error(cancel, 409, "OperationNotAllowed")
    assert error["message"] == "There is no ongoing Rolling Upgrade to cancel."


def test_no_request_is_answered_with_a_server_error(server: Server, arm: requests.Session, web: str) -> None:
    """A sweep of odd requests: whatever they are, the answer is a 2xx or a 4xx in ARM's envelope."""
    odd: list[tuple[str, str, Any]] = [
        ("PUT", web, {"properties": []}),
        ("PUT", web, {"sku": "big"}),
        ("PUT", web, {"location": 7}),
        ("PATCH", web, {"properties": {"upgradePolicy": {"mode": "Sideways"}}}),
        ("PATCH", web, {"properties": {"upgradePolicy": {"rollingUpgradePolicy": {"maxBatchInstancePercent": 0}}}}),
        ("PATCH", web, {"tags": ["a"]}),
        ("PATCH", web, {"zones": "1"}),
        ("PATCH", web, {"location": "eastus"}),
        ("POST", f"{web}/manualupgrade", {"instanceIds": [None]}),
        ("POST", f"{web}/manualupgrade", {"instanceIds": []}),
        ("POST", f"{web}/reimage", {"instanceIds": [{"id": 0}]}),
        ("POST", f"{web}/delete", {}),
        ("PUT", f"{web}/virtualMachines/0", {"properties": {"protectionPolicy": []}}),
        ("PUT", f"{web}/virtualMachines/0", {"properties": {"protectionPolicy": {"protectFromScaleIn": "yes"}}}),
        ("PUT", server.group_path("http-odd"), {"location": 5}),
        ("PUT", server.group_path("http-odd"), {"location": "westus", "tags": "x"}),
        ("GET", f"{web}/virtualMachines/99999999999999999999999999", None),
        ("GET", server.vmss_path("http", "%00"), None),
    ]
    for method, path, body in odd:
        answer = arm.request(method, server.url(path), json=body, timeout=10)
        assert answer.status_code < 500, (method, path, answer.text)
        if answer.status_code >= 400:
            assert_arm_error(answer, answer.status_code)
    assert arm.get(server.url(web), timeout=10).json()["location"] == "westus"
