"""The image catalogue routes (``/_scaleset/images``) against a live server, and ``latest`` resolving against them.

Images published here use their own publishers (``imgtest-*``), so the other tests on the shared server, which pin
their versions, are unaffected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient
from tests.api.conftest import Recorder, Server, assert_arm_error, scale_set_body, start_server, stop_server

DEMO_GALLERY = (
    "/subscriptions/5ca1e5e7-5ca1-45e7-a000-000000000001/resourceGroups/images/providers/Microsoft.Compute"
    "/galleries/scaleset/images/demo"
)
COMMAND = ["{python}", "-m", "myapp", "--port", "{port}", "--id", "{instance_id}"]


def image_url(server: Server, publisher: str, offer: str, sku: str, version: str) -> str:
    return f"{server.base}/_scaleset/images/{publisher}/{offer}/{sku}/{version}"


def publish(http: requests.Session, url: str, **fields: Any) -> requests.Response:
    return http.put(url, json={"command": COMMAND, **fields}, timeout=10)


def test_the_list_holds_the_builtin_demo_versions(server: Server, recorder: Recorder) -> None:
    http = server.session(recorder)
    answer = http.get(f"{server.base}/_scaleset/images", timeout=10)
    assert answer.status_code == 200
    demo = [i for i in answer.json()["value"] if (i["publisher"], i["offer"], i["sku"]) == ("scaleset", "demo", "app")]
    assert [(i["version"], i["excludeFromLatest"], i["builtIn"]) for i in demo] == [
        ("1.0.0", False, True),
        ("1.1.0", False, True),
        ("3.0.0", True, True),
        ("3.1.0", True, True),
        ("3.2.0", True, True),
        ("3.3.0", True, True),
    ]
    assert all(i["description"] and i["gallery"] == DEMO_GALLERY and i["command"][0] == "{python}" for i in demo)
    one = http.get(image_url(server, "SCALESET", "Demo", "APP", "3.1.0"), timeout=10)
    assert one.status_code == 200 and one.json()["version"] == "3.1.0" and one.json()["builtIn"] is True


def test_publish_replace_show_list_delete(server: Server, recorder: Recorder) -> None:
    http = server.session(recorder)
    url = image_url(server, "imgtest-crud", "web", "stable", "1.2.0")
    created = publish(http, url, env={"MODE": "{zone}"}, cwd="{os_dir}", description="first")
    assert created.status_code == 201, created.text
    body = created.json()
    assert body.pop("automaticOSUpgrades") == []  # no scale set tracks this image: no OS upgrade starts
    assert body == {
        "publisher": "imgtest-crud",
        "offer": "web",
        "sku": "stable",
        "version": "1.2.0",
        "gallery": None,
        "command": COMMAND,
        "env": {"MODE": "{zone}"},
        "cwd": "{os_dir}",
        "excludeFromLatest": False,
        "description": "first",
        "builtIn": False,
    }
    assert http.get(url, timeout=10).json() == body
    replaced = publish(http, url.replace("imgtest-crud", "IMGTEST-CRUD"), description="second")
    assert replaced.status_code == 200, replaced.text  # the same version: names compare without case
    shown = http.get(url, timeout=10).json()
    assert shown["description"] == "second" and shown["env"] == {} and shown["publisher"] == "IMGTEST-CRUD"
    listed = http.get(f"{server.base}/_scaleset/images", timeout=10).json()["value"]
    assert [i["version"] for i in listed if i["publisher"].lower() == "imgtest-crud"] == ["1.2.0"]

    deleted = http.delete(url, timeout=10)
    assert deleted.status_code == 204 and deleted.content == b""
    assert_arm_error(http.get(url, timeout=10), 404, "NotFound")
    assert_arm_error(http.delete(url, timeout=10), 404, "NotFound")


def test_builtin_versions_cannot_be_replaced_or_deleted(server: Server, recorder: Recorder) -> None:
    http = server.session(recorder)
    url = image_url(server, "scaleset", "demo", "APP", "1.0.0")
    error = assert_arm_error(publish(http, url), 409, "Conflict")
    assert "built in" in error["message"]
    error = assert_arm_error(http.delete(url, timeout=10), 409, "Conflict")
    assert "built in" in error["message"]
    assert http.get(url, timeout=10).json()["builtIn"] is True


def test_invalid_image_versions_are_400(server: Server, recorder: Recorder) -> None:
    http = server.session(recorder)
    url = image_url(server, "imgtest-bad", "web", "stable", "1.0.0")
    error = assert_arm_error(http.put(url, json={"command": ["run", "{host}"]}, timeout=10), 400, "InvalidParameter")
    assert "unknown placeholder '{host}'" in error["message"] and error["target"] == "command"
    error = assert_arm_error(http.put(url, json={"command": []}, timeout=10), 400, "InvalidParameter")
    assert "command must not be empty" in error["message"]
    assert_arm_error(http.put(url, json={"env": {}}, timeout=10), 400, "InvalidParameter")  # no command
    error = assert_arm_error(publish(http, url, colour="blue"), 400, "InvalidParameter")
    assert error["target"] == "colour"
    bad_version = image_url(server, "imgtest-bad", "web", "stable", "latest")
    error = assert_arm_error(publish(http, bad_version), 400, "InvalidParameter")
    assert "is not dotted numbers" in error["message"] and error["target"] == "version"
    error = assert_arm_error(publish(http, url, version="2.0.0"), 400, "InvalidParameter")
    assert "differs from the path" in error["message"]
    assert_arm_error(http.put(url, data=b"", timeout=10), 400, "InvalidRequestContent")
    assert_arm_error(
        http.put(url, data=b"{no", headers={"Content-Type": "application/json"}, timeout=10),
        400,
        "InvalidRequestContent",
    )
    assert_arm_error(http.put(url, json=["run"], timeout=10), 400, "InvalidRequestContent")
    assert_arm_error(http.put(url, data=b"x", headers={"Content-Type": "text/plain"}, timeout=10), 415)
    assert_arm_error(http.get(url, timeout=10), 404, "NotFound")  # nothing was stored


def test_a_gallery_image_holds_one_publisher_offer_sku(server: Server, recorder: Recorder) -> None:
    http = server.session(recorder)
    url = image_url(server, "imgtest-gallery", "web", "stable", "1.0.0")
    error = assert_arm_error(publish(http, url, gallery=DEMO_GALLERY.upper()), 409, "Conflict")
    assert "scaleset:demo:app" in error["message"]


def test_the_routes_need_a_token(server: Server) -> None:
    anonymous = server.anonymous()
    assert_arm_error(anonymous.get(f"{server.base}/_scaleset/images", timeout=10), 401)
    url = image_url(server, "imgtest-anon", "web", "stable", "1.0.0")
    assert_arm_error(anonymous.put(url, json={"command": COMMAND}, timeout=10), 401)


def exact_versions(compute: ComputeManagementClient, group: str, name: str) -> dict[str, str]:
    vms = compute.virtual_machine_scale_set_vms.list(group, name)
    return {vm.instance_id: vm.storage_profile.image_reference.exact_version for vm in vms}


def test_latest_resolves_against_the_catalogue_and_sees_new_versions_without_a_restart(
    server: Server, recorder: Recorder, compute: ComputeManagementClient, resources: ResourceManagementClient
) -> None:
    http = server.session(recorder)
    for version, extra in (("1.0.0", {}), ("1.9.0", {}), ("1.10.0", {}), ("9.0.0", {"excludeFromLatest": True})):
        answer = publish(http, image_url(server, "imgtest-latest", "web", "stable", version), **extra)
        assert answer.status_code == 201, answer.text
    resources.resource_groups.create_or_update("images-latest", {"location": "westus"})
    body: Any = scale_set_body(capacity=1, mode="Manual")
    body["properties"]["virtualMachineProfile"]["storageProfile"]["imageReference"] = {
        "publisher": "IMGTEST-LATEST",
        "offer": "web",
        "sku": "stable",
        "version": "latest",
    }
    sets = compute.virtual_machine_scale_sets
    sets.begin_create_or_update("images-latest", "web", body).result()
    assert exact_versions(compute, "images-latest", "web") == {"0": "1.10.0"}  # newest, 9.0.0 excluded

    answer = publish(http, image_url(server, "imgtest-latest", "web", "stable", "1.11.0"))
    assert answer.status_code == 201, answer.text
    body["sku"]["capacity"] = 2
    sets.begin_create_or_update("images-latest", "web", body).result()
    assert exact_versions(compute, "images-latest", "web") == {"0": "1.10.0", "1": "1.11.0"}


def test_a_gallery_id_resolves_to_the_newest_demo_version(
    compute: ComputeManagementClient, resources: ResourceManagementClient
) -> None:
    resources.resource_groups.create_or_update("images-gallery", {"location": "westus"})
    body: Any = scale_set_body(capacity=1, mode="Manual")
    body["properties"]["virtualMachineProfile"]["storageProfile"]["imageReference"] = {"id": DEMO_GALLERY}
    compute.virtual_machine_scale_sets.begin_create_or_update("images-gallery", "web", body).result()
    assert exact_versions(compute, "images-gallery", "web") == {"0": "1.1.0"}
    pinned: Any = scale_set_body(capacity=1, mode="Manual")
    pinned["properties"]["virtualMachineProfile"]["storageProfile"]["imageReference"] = {
        "id": DEMO_GALLERY + "/versions/3.0.0"
    }
    compute.virtual_machine_scale_sets.begin_create_or_update("images-gallery", "pinned", pinned).result()
    assert exact_versions(compute, "images-gallery", "pinned") == {"0": "3.0.0"}


def test_published_versions_survive_a_restart(tmp_path: Path) -> None:
    process, server = start_server(tmp_path)
    try:
        url = image_url(server, "imgtest-restart", "web", "stable", "2.0.0")
        assert publish(server.session(), url, description="kept").status_code == 201
    finally:
        assert stop_server(process) == 0
    process, server = start_server(tmp_path)
    try:
        answer = server.session().get(image_url(server, "imgtest-restart", "web", "stable", "2.0.0"), timeout=10)
        assert answer.status_code == 200 and answer.json()["description"] == "kept"
    finally:
        assert stop_server(process) == 0
