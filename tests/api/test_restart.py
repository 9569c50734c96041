"""SIGTERM in the middle of a rolling upgrade: the server exits 0 promptly, and a new server on the same data dir
keeps every resource, honours tokens issued before, and carries the rollout (and the SDK's poller) to the end."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from azure.mgmt.compute import ComputeManagementClient
from tests.api.conftest import Recorder, image_patch, scale_set_body, start_server, stop_server, wait_until


def test_sigterm_mid_rollout_then_resume(tmp_path: Path, official_schema: Recorder) -> None:
    process, server = start_server(tmp_path)
    try:
        resources = server.resources()
        compute: ComputeManagementClient = server.compute(official_schema)
        resources.resource_groups.create_or_update("restart", {"location": "westus"})
        resources.resource_groups.create_or_update("restart-kept", {"location": "eastus", "tags": {"k": "v"}})
        sets, upgrades = compute.virtual_machine_scale_sets, compute.virtual_machine_scale_set_rolling_upgrades
        rolling = {"maxBatchInstancePercent": 25, "pauseTimeBetweenBatches": "PT10M"}  # 1 s a pause at 600x
        sets.begin_create_or_update("restart", "web", scale_set_body(capacity=4, rolling=rolling)).result()
        token = server.token()

        # the model change's poller: its continuation token is all a client keeps across the restart (the poller
        # itself goes on polling in its own thread and is left to it)
        continuation = sets.begin_update("restart", "web", image_patch("5.0.0")).continuation_token()
        wait_until(
            lambda: upgrades.get_latest("restart", "web").progress.successful_instance_count >= 1,
            what="the first batch to finish",
        )
        before = upgrades.get_latest("restart", "web")
        assert before.running_status.code == "RollingForward" and before.progress.pending_instance_count >= 1
        vm_ids = sorted(vm.instance_id for vm in compute.virtual_machine_scale_set_vms.list("restart", "web"))

        stopping = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert time.monotonic() - stopping < 3.0, "shutdown was not prompt"
    except BaseException:
        process.kill()
        process.wait()
        raise

    process, again = start_server(tmp_path, port=server.port)  # same port: the operation URLs stay valid
    try:
        assert again.secret == server.secret
        assert again.session(token=token).get(again.url("/subscriptions"), timeout=10).status_code == 200
        groups = {g.name: g for g in again.resources().resource_groups.list()}
        assert {"restart", "restart-kept"} <= set(groups) and groups["restart-kept"].tags == {"k": "v"}

        compute = again.compute(official_schema)
        upgrades = compute.virtual_machine_scale_set_rolling_upgrades
        resumed = upgrades.get_latest("restart", "web")
        assert resumed.running_status.code in ("RollingForward", "Completed")
        assert resumed.progress.successful_instance_count >= before.progress.successful_instance_count

        # the SDK picks the model change's operation up from its continuation token and sees it succeed
        poller = compute.virtual_machine_scale_sets.begin_update(
            "restart", "web", image_patch("5.0.0"), continuation_token=continuation
        )
        assert poller.result(timeout=30).provisioning_state == "Succeeded"
        final = upgrades.get_latest("restart", "web")
        assert final.running_status.code == "Completed" and final.running_status.start_time == (
            before.running_status.start_time
        )
        assert final.progress.successful_instance_count == 4 and final.progress.pending_instance_count == 0
        vms = list(compute.virtual_machine_scale_set_vms.list("restart", "web"))
        assert sorted(vm.instance_id for vm in vms) == vm_ids
        assert {vm.storage_profile.image_reference.exact_version for vm in vms} == {"5.0.0"}
    finally:
        assert stop_server(process) == 0


def test_ctrl_c_also_exits_cleanly(tmp_path: Path) -> None:
    process, server = start_server(tmp_path)
    assert server.session().get(server.url("/subscriptions"), timeout=10).status_code == 200  # a kept-alive client
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=10) == 0
    assert "Traceback" not in (tmp_path / "serve.log").read_text()
