"""One real instance at a time: a crash the probe catches, custom-script extensions that fail and succeed,
customData as a file, and what a reimage keeps (the data dir) and what it replaces (the OS dir)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.process.conftest import (
    TEST_IMAGE,
    Live,
    custom_script,
    demo_command,
    get,
    instance_home,
    our_processes,
    scale_set,
    vm_health,
    vm_statuses,
    wait_for,
)

GROUP = "instances"
CRASH_AFTER = 6.0  # seconds after listening: past the second probe (at 5 s), which must see it Healthy


def test_crash_after_healthy_is_caught_by_the_probe(live: Live) -> None:
    """A published image whose application crashes a few seconds after it turns Healthy: the probe that follows
    reads no answer, vmHealth turns Unknown (rich health), and the load balancer's pool loses the instance."""
    api = live.api
    api.group(GROUP)
    api.publish("9.1.0", demo_command("--mode", "crash", "--crash-after", f"{CRASH_AFTER:g}"))
    body = scale_set(capacity=1, version="9.1.0", image=TEST_IMAGE, mode="Manual")
    assert api.finish(api.create(GROUP, "crashy", body), timeout=10)["status"] == "Succeeded"

    def healthy_in_pool() -> bool:
        vm = api.vms(GROUP, "crashy")[0]
        return vm_health(vm) == "HealthState/healthy" and len(api.balancer(GROUP, "crashy")["pool"]) == 1

    wait_for(healthy_in_pool, timeout=10, what="the instance to turn Healthy and join the pool")
    port = int(api.balancer(GROUP, "crashy")["port"])
    status, answer = get(port)
    assert status == 200 and json.loads(answer)["version"] == "9.1.0"

    vm = wait_for(
        lambda: (vm := api.vms(GROUP, "crashy")[0]) and vm_health(vm) != "HealthState/healthy" and vm,
        timeout=CRASH_AFTER + 8,
        what="the probe to notice the crash",
    )
    assert vm_health(vm) == "HealthState/unknown"  # rich health: no answer at all reads Unknown
    assert vm["properties"]["provisioningState"] == "Succeeded"  # the VM is fine; its application is not
    assert api.balancer(GROUP, "crashy")["pool"] == []
    log = (instance_home(live.data_dir, "crashy", 0) / "logs" / "app.log").read_text()
    assert "crashing on purpose" in log
    try:
        get(port, timeout=1)
    except OSError:
        pass  # the empty pool resets the connection
    else:
        raise AssertionError("the load balancer answered with no instance in its pool")


def test_failing_custom_script_fails_provisioning(live: Live) -> None:
    """A custom script that exits 3: the instance's provisioning fails with VMExtensionProvisioningError, naming
    the extension, the exit status and the script's output; the application is never started."""
    api = live.api
    api.group(GROUP)
    body = scale_set(capacity=1, mode="Manual", extensions=[custom_script("echo boom >&2; exit 3", name="setup")])
    result = api.finish(api.create(GROUP, "badscript", body), timeout=10)
    vm = wait_for(
        lambda: (vm := api.vms(GROUP, "badscript")[0])["properties"]["provisioningState"] == "Failed" and vm,
        timeout=10,
        what="the instance's provisioning to fail",
    )
    assert result["status"] == "Failed", result
    assert result["error"]["code"] == "VMExtensionProvisioningError", result
    status = next(s for s in vm_statuses(vm) if s["code"].startswith("ProvisioningState/"))
    assert status["code"] == "ProvisioningState/failed/VMExtensionProvisioningError"
    assert status["level"] == "Error"
    assert "'setup'" in status["message"] and "status 3" in status["message"] and "boom" in status["message"]
    extension = vm["properties"]["instanceView"]["extensions"][0]
    assert extension["name"] == "setup" and extension["statuses"][0]["code"] == "ProvisioningState/failed"
    home = instance_home(live.data_dir, "badscript", 0)
    assert not (home / "data" / "starts").exists(), "the application started although its extension failed"
    assert not [p for p in our_processes(live.data_dir) if p.marker.endswith("/badscript#0")]


def test_custom_script_runs_in_the_os_dir_before_the_app(live: Live) -> None:
    """A custom script that succeeds runs in the instance's OS dir, and before the application starts."""
    api = live.api
    api.group(GROUP)
    script = "echo ok > marker"
    body = scale_set(capacity=1, mode="Manual", extensions=[custom_script(script)])
    assert api.finish(api.create(GROUP, "goodscript", body), timeout=10)["status"] == "Succeeded"
    home = instance_home(live.data_dir, "goodscript", 0)
    starts = wait_for(
        lambda: (home / "data" / "starts").exists() and (home / "data" / "starts").read_text(),
        timeout=5,
        what="the application to start",
    )
    marker = home / "os" / "marker"
    assert marker.read_text() == "ok\n"
    started_at = float(starts.split()[0])
    assert marker.stat().st_mtime <= started_at, "the application started before the script had run"
    vm = api.vms(GROUP, "goodscript")[0]
    assert vm["properties"]["provisioningState"] == "Succeeded"


def _reimage(live: Live, name: str, action: str) -> None:
    api = live.api
    operation = api.start_operation("POST", api.path(GROUP, name) + f"/virtualMachines/0/{action}")
    assert api.finish(operation, timeout=10)["status"] == "Succeeded"


def _started(home: Path, count: int) -> list[str]:
    """Wait until the application has started ``count`` times by its data dir's ``starts`` file."""

    def lines() -> list[str] | None:
        try:
            found = (home / "data" / "starts").read_text().splitlines()
        except FileNotFoundError:
            return None
        return found if len(found) == count else None

    return list(wait_for(lines, timeout=5, what=f"start number {count}"))


def test_custom_data_is_a_file_and_reimage_keeps_only_the_data_dir(live: Live) -> None:
    """customData (base64 in the model) is ``{os_dir}/customdata``, decoded; a reimage gives a fresh OS dir
    (customData written again) and keeps the data dir; reimageall resets the data dir too ("all the disks,
    including data disks")."""
    api = live.api
    api.group(GROUP)
    payload = b"#cloud-config\nruncmd:\n  - echo hello\n\x00\xff binary is fine\n"
    body = scale_set(capacity=1, mode="Manual", extensions=[], custom_data=payload)
    assert api.finish(api.create(GROUP, "custom", body), timeout=10)["status"] == "Succeeded"
    home = instance_home(live.data_dir, "custom", 0)
    _started(home, 1)
    assert (home / "os" / "customdata").read_bytes() == payload
    log = wait_for(
        lambda: "customData" in (text := (home / "logs" / "app.log").read_text()) and text,
        timeout=5,
        what="the application to read its customData",
    )
    assert f"customData: {len(payload)} bytes" in log

    (home / "data" / "kept").write_text("state\n")
    (home / "os" / "scratch").write_text("gone after a reimage\n")
    _reimage(live, "custom", "reimage")
    _started(home, 2)
    assert (home / "data" / "kept").read_text() == "state\n"
    assert not (home / "os" / "scratch").exists()
    assert (home / "os" / "customdata").read_bytes() == payload

    _reimage(live, "custom", "reimageall")
    assert _started(home, 1)[0].split()[1] == "1.0.0"  # a fresh data dir: the start count begins again
    assert not (home / "data" / "kept").exists()
    assert (home / "os" / "customdata").read_bytes() == payload
