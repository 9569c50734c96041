"""The server's own life with live instances: a SIGTERM stops every instance and a new server on the same data dir
brings them back; a SIGKILL leaves no instance behind (PR_SET_PDEATHSIG), and the next server adopts the fleet,
stopping first whatever an instance's start script left running."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.api.conftest import Server
from tests.process.conftest import (
    TEST_IMAGE,
    Api,
    Found,
    all_healthy,
    answering,
    get,
    instance_home,
    kill,
    kill_leftovers,
    our_processes,
    scale_set,
    server_log,
    start_process_server,
    terminate,
    vm_statuses,
    wait_for,
)

GROUP = "lifecycle"
NAME = "web"
CAPACITY = 2


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """A data dir of this test's own servers; whatever the test does, none of its instances outlives it."""
    yield tmp_path / "serve"
    kill_leftovers(tmp_path / "serve")


def instances_of(data_dir: Path) -> dict[str, Found]:
    """The instance processes of ``data_dir`` by marker (``{set id}#{instance id}``)."""
    return {found.marker: found for found in our_processes(data_dir)}


def start_count(data_dir: Path, instance_id: int) -> int:
    """How many times an instance's application has started (0 before its first start)."""
    try:
        return len((instance_home(data_dir, NAME, instance_id) / "data" / "starts").read_text().splitlines())
    except FileNotFoundError:
        return 0


def refused(port: int) -> bool:
    try:
        get(port, timeout=1)
    except OSError:
        return True
    return False


def test_sigterm_stops_every_instance_and_a_restart_brings_them_back(data_dir: Path) -> None:
    process, server = start_process_server(data_dir)
    try:
        api = Api(server)
        api.group(GROUP)
        assert api.finish(api.create(GROUP, NAME, scale_set(capacity=CAPACITY)), timeout=10)["status"] == "Succeeded"
        wait_for(lambda: all_healthy(api, GROUP, NAME, CAPACITY), timeout=10, what="every instance Healthy")
        lb_port = int(api.balancer(GROUP, NAME)["port"])
        before = instances_of(data_dir)
        assert len(before) == CAPACITY

        stopping = time.monotonic()
        assert terminate(process) == 0, server_log(data_dir)
        assert time.monotonic() - stopping < 5, "shutdown was not prompt"
    finally:
        kill(process)
    assert our_processes(data_dir) == [], "instances outlived the server"
    assert refused(lb_port)

    process, again = start_process_server(data_dir, port=server.port)
    try:
        api = Api(again)
        vms = wait_for(lambda: all_healthy(api, GROUP, NAME, CAPACITY), timeout=10, what="the instances to return")
        assert sorted(vm["instanceId"] for vm in vms) == [str(i) for i in range(CAPACITY)]
        for vm in vms:
            assert "PowerState/running" in [s["code"] for s in vm_statuses(vm)]
        after = instances_of(data_dir)
        assert set(after) == set(before)  # the same instances...
        assert not {f.pid for f in after.values()} & {f.pid for f in before.values()}  # ...in new processes
        assert [start_count(data_dir, i) for i in range(CAPACITY)] == [2] * CAPACITY  # data dirs kept

        wait_for(lambda: len(api.balancer(GROUP, NAME)["pool"]) == CAPACITY, timeout=2, what="a full pool")
        assert int(api.balancer(GROUP, NAME)["port"]) == lb_port  # the saved port, free again
        seen = {json.loads(get(lb_port)[1])["instanceId"] for _ in range(2 * CAPACITY)}
        assert seen == {str(i) for i in range(CAPACITY)}
        assert terminate(process) == 0, server_log(data_dir)
    finally:
        kill(process)
    assert our_processes(data_dir) == []


def sigkill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


def test_sigkill_leaves_no_instance_behind_and_the_next_server_adopts_them(data_dir: Path) -> None:
    process, server = start_process_server(data_dir)
    try:
        api = Api(server)
        api.group(GROUP)
        body = scale_set(capacity=CAPACITY, mode="Manual", extensions=[])  # no health source: running is enough
        assert api.finish(api.create(GROUP, NAME, body), timeout=10)["status"] == "Succeeded"
        before = wait_for(
            lambda: len(found := instances_of(data_dir)) == CAPACITY and found, timeout=5, what="the processes"
        )
        sigkill(process)  # no shutdown code runs: only the kernel's parent-death signal
    finally:
        kill(process)
    wait_for(lambda: our_processes(data_dir) == [], timeout=5, what="the instances to die with the server")

    process, again = start_process_server(data_dir, port=server.port)
    try:
        api = Api(again)
        after = wait_for(
            lambda: len(found := instances_of(data_dir)) == CAPACITY and found, timeout=5, what="the adopted fleet"
        )
        assert set(after) == set(before) and not {f.pid for f in after.values()} & {f.pid for f in before.values()}
        # with no health source an instance is in the pool once its process runs, listening or not (as in Azure,
        # where a VM without a probe gets traffic as soon as it runs): wait until both answer
        port = int(api.balancer(GROUP, NAME)["port"])
        wait_for(
            lambda: answering(port, 2 * CAPACITY) == {"0", "1"},
            timeout=5,
            what="both instances to answer through the load balancer",
        )
        assert terminate(process) == 0, server_log(data_dir)
    finally:
        kill(process)
    assert our_processes(data_dir) == []


def start_script_instance(data_dir: Path) -> tuple[subprocess.Popen[bytes], Server]:
    """A server with one instance of an image whose command is a shell script running the demo application as its
    child (no ``exec``), as a start script would: two processes, once the application has started."""
    app = (
        "'{python}' -m scaleset.demo.app --port {port} --version {version} --instance-id {instance_id} "
        "--data-dir '{data_dir}' --os-dir '{os_dir}'"
    )
    process, server = start_process_server(data_dir)
    try:
        api = Api(server)
        api.group(GROUP)
        api.publish("7.0.0", ["/bin/sh", "-c", f"{app}; echo the application ended"])
        body = scale_set(capacity=1, version="7.0.0", image=TEST_IMAGE, mode="Manual", extensions=[])
        assert api.finish(api.create(GROUP, NAME, body), timeout=10)["status"] == "Succeeded"
        wait_for(lambda: len(our_processes(data_dir)) >= 2, timeout=5, what="the script and the application")
        wait_for(lambda: start_count(data_dir, 0) == 1, timeout=5, what="the application to start")
    except BaseException:
        kill(process)
        raise
    return process, server


def test_after_a_sigkill_the_next_server_cleans_up_an_image_s_child_processes(data_dir: Path) -> None:
    """PR_SET_PDEATHSIG reaches a start script, not the application it runs: after a SIGKILL the application lives
    on, holding the instance's port. The next server finds it (in the process group the instance's pid file names,
    carrying the instance's marker) and stops it before starting the instance again."""
    process, server = start_script_instance(data_dir)
    try:
        sigkill(process)
    finally:
        kill(process)
    wait_for(lambda: len(our_processes(data_dir)) <= 1, timeout=5, what="the script to die with the server")
    left = {found.pid for found in our_processes(data_dir)}

    process, again = start_process_server(data_dir, port=server.port)
    try:
        api = Api(again)
        wait_for(lambda: start_count(data_dir, 0) == 2, timeout=5, what="the instance to start again")
        assert not left & {f.pid for f in our_processes(data_dir)}, "the leftover still runs"
        log = (instance_home(data_dir, NAME, 0) / "logs" / "app.log").read_text()
        assert "cannot listen" not in log, log
        wait_for(lambda: len(api.balancer(GROUP, NAME)["pool"]) == 1, timeout=5, what="the pool")
        port = int(api.balancer(GROUP, NAME)["port"])
        answer = wait_for(lambda: answering(port, 1), timeout=5, what="the instance to answer")
        assert answer == {"0"}
        assert terminate(process) == 0, server_log(data_dir)
    finally:
        kill(process)
    assert our_processes(data_dir) == []


def test_sigkill_also_ends_what_an_image_s_start_script_started(data_dir: Path) -> None:
    process, _server = start_script_instance(data_dir)
    try:
        sigkill(process)
    finally:
        kill(process)
    wait_for(lambda: our_processes(data_dir) == [], timeout=2, what="every process of the instance to end")
