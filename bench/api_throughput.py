"""HTTPS throughput of the ARM API, measured with wrk, against two references in the same run.

Measured (each for ``--seconds`` with ``--connections`` connections, after a warm-up):

* scaleset: ``GET`` of a scale set, ``GET .../virtualMachines`` of a 1,000-instance scale set, and
  ``GET .../rollingUpgrades/latest``;
* moto (the AWS emulator, a bench-only dependency): ``DescribeAutoScalingGroups`` of a 1,000-instance group, the
  nearest equivalent call, on moto's own server over HTTPS;
* the ceiling: a bare starlette route on the same stack as scaleset (uvicorn, the same TLS certificate) returning
  the same 1,000-VM list as precomputed bytes.

Printed: requests per second and p50/p99 latency for each, and the two ratios the goal is stated in (1,000-VM list
vs moto, and vs the ceiling). Needs ``wrk`` (Debian package) and ``pip install 'moto[server]'``; loopback only.

    python bench/api_throughput.py [--seconds 10] [--connections 16]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3  # installed with moto (the bench extra)
import requests
import urllib3

SUB = "5ca1e5e7-5ca1-45e7-a000-000000000001"
TENANT = "5ca1e5e7-5ca1-45e7-a000-0000000000aa"
API = "api-version=2024-11-01"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    match = re.match(r"([\d.]+)(us|ms|s)", text)
    if match is None:
        raise ValueError(text)
    return float(match.group(1)) * _UNITS[match.group(2)]


def run_wrk(url: str, *, headers: dict[str, str], seconds: int, connections: int) -> dict[str, Any]:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    for key, value in headers.items():
        command += ["-H", f"{key}: {value}"]
    subprocess.run([*command[:3], "-c2", "-d2s", *command[5:], url], capture_output=True, check=True)  # warm-up
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99, "non2xx": int(errors.group(1)) if errors else 0}


def start_scaleset(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scaleset.main",
            "serve",
            "--backend",
            "simulated",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            "--time-scale",
            "3000",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_listening(port, process)
    return process, f"https://127.0.0.1:{port}"


def prepare_scaleset(base: str, data_dir: Path) -> tuple[str, str]:
    """A 1,000-instance Rolling scale set that has finished one rollout; returns (token, scale set path)."""
    ca = str(data_dir / "tls" / "ca.pem")
    secret = (data_dir / "client-secret").read_text().strip()
    token = requests.post(
        f"{base}/{TENANT}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "bench",
            "client_secret": secret,
            "scope": "https://management.azure.com/.default",
        },
        verify=ca,
        timeout=30,
    ).json()["access_token"]
    session = requests.Session()
    session.trust_env = False  # an ambient REQUESTS_CA_BUNDLE would override the server's CA
    session.verify = ca
    session.headers["Authorization"] = f"Bearer {token}"
    group = f"/subscriptions/{SUB}/resourceGroups/bench"
    session.put(f"{base}{group}?{API}", json={"location": "westus"}, timeout=30).raise_for_status()
    path = f"{group}/providers/Microsoft.Compute/virtualMachineScaleSets/web"
    body: dict[str, Any] = {
        "location": "westus",
        "sku": {"name": "Standard_D2s_v3", "capacity": 1000},
        "properties": {
            "upgradePolicy": {"mode": "Rolling", "rollingUpgradePolicy": {"maxBatchInstancePercent": 50}},
            "virtualMachineProfile": {
                "osProfile": {"computerNamePrefix": "web", "adminUsername": "azureuser"},
                "storageProfile": {"imageReference": {"publisher": "p", "offer": "o", "sku": "s", "version": "1.0.0"}},
                "networkProfile": {
                    "healthProbe": {"id": f"{group}/providers/Microsoft.Network/loadBalancers/lb/probes/p"}
                },
            },
        },
    }
    session.put(f"{base}{path}?{API}", json=body, timeout=60).raise_for_status()
    patch: dict[str, Any] = {
        "properties": {"virtualMachineProfile": {"storageProfile": {"imageReference": {"version": "2.0.0"}}}}
    }
    session.patch(f"{base}{path}?{API}", json=patch, timeout=60).raise_for_status()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        latest = session.get(f"{base}{path}/rollingUpgrades/latest?{API}", timeout=30).json()
        if latest.get("properties", {}).get("runningStatus", {}).get("code") == "Completed":
            break
        time.sleep(0.5)
    else:
        raise RuntimeError("the rollout did not complete")
    vms = session.get(f"{base}{path}/virtualMachines?{API}", timeout=60).json()["value"]
    if len(vms) != 1000:
        raise RuntimeError(f"expected 1000 VMs, got {len(vms)}")
    return token, path


def cold_list_ms(base: str, path: str, token: str, data_dir: Path, rounds: int = 7) -> float:
    """Median time of a 1,000-VM listing that must be rendered: each round first changes the scale set's tags,
    which invalidates every cached rendering."""
    session = requests.Session()
    session.trust_env = False
    session.verify = str(data_dir / "tls" / "ca.pem")
    session.headers["Authorization"] = f"Bearer {token}"
    times = []
    for round_ in range(rounds):
        session.patch(f"{base}{path}?{API}", json={"tags": {"round": str(round_)}}, timeout=60).raise_for_status()
        started = time.perf_counter()
        session.get(f"{base}{path}/virtualMachines?{API}", timeout=60).raise_for_status()
        times.append((time.perf_counter() - started) * 1000)
    return sorted(times)[len(times) // 2]


CEILING_APP = """
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

payload_path, port, cert, key = sys.argv[1:5]
payload = open(payload_path, "rb").read()


async def vms(request):
    return Response(payload, media_type="application/json")


uvicorn.run(Starlette(routes=[Route("/vms", vms)]), host="127.0.0.1", port=int(port), ssl_certfile=cert,
            ssl_keyfile=key, log_level="warning", access_log=False)
"""


def start_ceiling(payload: Path, data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A bare starlette route on uvicorn with scaleset's certificate, answering precomputed bytes."""
    port = free_port()
    script = data_dir / "ceiling_app.py"
    script.write_text(CEILING_APP)
    tls = data_dir / "tls"
    process = subprocess.Popen(
        [sys.executable, str(script), str(payload), str(port), str(tls / "server.pem"), str(tls / "server-key.pem")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_listening(port, process)
    return process, f"https://127.0.0.1:{port}/vms"


def start_moto(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """moto's server over HTTPS with a 1,000-instance Auto Scaling group."""
    port = free_port()
    moto = shutil.which("moto_server")
    if moto is None:
        raise RuntimeError("moto_server not found: pip install 'moto[server]'")
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    process = subprocess.Popen(
        [moto, "-p", str(port), "-H", "127.0.0.1", "--ssl"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    wait_listening(port, process)
    endpoint = f"https://127.0.0.1:{port}"
    keys = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench", "region_name": "us-east-1"}
    ec2 = boto3.client("ec2", endpoint_url=endpoint, verify=False, **keys)
    image = ec2.describe_images()["Images"][0]["ImageId"]
    autoscaling = boto3.client("autoscaling", endpoint_url=endpoint, verify=False, **keys)
    autoscaling.create_launch_configuration(LaunchConfigurationName="lc", ImageId=image, InstanceType="t3.micro")
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="asg",
        LaunchConfigurationName="lc",
        MinSize=1000,
        MaxSize=1000,
        DesiredCapacity=1000,
        AvailabilityZones=["us-east-1a"],
    )
    count = len(
        autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["asg"])["AutoScalingGroups"][0]["Instances"]
    )
    if count != 1000:
        raise RuntimeError(f"moto made {count} instances")
    return process, (
        f"{endpoint}/?Action=DescribeAutoScalingGroups&AutoScalingGroupNames.member.1=asg&Version=2011-01-01"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk not found: apt-get install wrk", file=sys.stderr)
        return 2
    urllib3.disable_warnings()
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="scaleset-bench-") as scratch:
        data_dir = Path(scratch)
        server, base = start_scaleset(data_dir)
        processes = [server]
        try:
            token, path = prepare_scaleset(base, data_dir)
            auth = {"Authorization": f"Bearer {token}"}
            payload = data_dir / "vms.json"
            payload.write_bytes(
                requests.get(
                    f"{base}{path}/virtualMachines?{API}",
                    headers=auth,
                    verify=str(data_dir / "tls" / "ca.pem"),
                    timeout=60,
                ).content
            )
            cold = cold_list_ms(base, path, token, data_dir)
            knobs = {"seconds": args.seconds, "connections": args.connections}
            results["scaleset GET scale set"] = run_wrk(f"{base}{path}?{API}", headers=auth, **knobs)
            results["scaleset list 1,000 VMs"] = run_wrk(f"{base}{path}/virtualMachines?{API}", headers=auth, **knobs)
            results["scaleset get-latest"] = run_wrk(
                f"{base}{path}/rollingUpgrades/latest?{API}", headers=auth, **knobs
            )
            stop(server)
            processes.remove(server)
            ceiling, ceiling_url = start_ceiling(payload, data_dir)
            processes.append(ceiling)
            results["ceiling: bare route, same 1,000 VMs"] = run_wrk(ceiling_url, headers={}, **knobs)
            stop(ceiling)
            processes.remove(ceiling)
            moto, moto_url = start_moto(data_dir)
            processes.append(moto)
            amz = {
                "Authorization": "AWS4-HMAC-SHA256 Credential=bench/20260101/us-east-1/autoscaling/aws4_request, "
                "SignedHeaders=host, Signature=0"
            }
            results["moto DescribeAutoScalingGroups (1,000)"] = run_wrk(moto_url, headers=amz, **knobs)
        finally:
            for process in processes:
                stop(process)
    width = max(len(name) for name in results)
    print(f"{'':{width}}  {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
    for name, r in results.items():
        print(f"{name:{width}}  {r['rps']:>9.1f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['non2xx']:>8}")
    listing = results["scaleset list 1,000 VMs"]["rps"]
    moto_rps = results["moto DescribeAutoScalingGroups (1,000)"]["rps"]
    ceiling_rps = results["ceiling: bare route, same 1,000 VMs"]["rps"]
    print(f"1,000-VM list right after a change (rendered, not cached): median {cold:.1f} ms")
    print(f"1,000-VM list vs moto: {listing / moto_rps:.1f}x (goal >= 50x)")
    print(f"ceiling vs 1,000-VM list: {ceiling_rps / listing:.2f}x (goal <= 2x)")
    print(
        json.dumps(
            {
                "results": results,
                "coldListMs": cold,
                "vsMoto": listing / moto_rps,
                "ceilingOverList": ceiling_rps / listing,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
