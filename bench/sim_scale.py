"""Rolling upgrades at scale in virtual time, with the SQLite store.

Three runs, each in its own process so peak memory is its own:

* one scale set of 1,000 instances;
* one scale set of 10,000 instances;
* 100 scale sets of 100 instances each, upgraded at once.

Policy: 20% batches, PT30S pause, instances provisioning in 30-90 s. Each run creates its fleet, lets it settle,
changes the image, and drains the rollout. Printed per run: wall seconds for the rollout (and for the whole run),
the rollout's virtual duration, their ratio, passes run, and peak resident memory.

    python bench/sim_scale.py            # all three
    python bench/sim_scale.py 10000      # one run: 1000, 10000 or 100x100
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from scaleset.backends.simulated import Range, SimulatedBackend, SimulationConfig
from scaleset.engine.clock import VirtualClock
from scaleset.engine.engine import Engine
from scaleset.engine.services import Services
from scaleset.store import SqliteStore

RUNS = {"1000": (1, 1000), "10000": (1, 10_000), "100x100": (100, 100)}


def scale_set_body(capacity: int) -> dict[str, Any]:
    return {
        "location": "westus",
        "sku": {"name": "Standard_D2s_v3", "capacity": capacity},
        "properties": {
            "upgradePolicy": {
                "mode": "Rolling",
                "rollingUpgradePolicy": {"maxBatchInstancePercent": 20, "pauseTimeBetweenBatches": "PT30S"},
            },
            "virtualMachineProfile": {
                "storageProfile": {"imageReference": {"publisher": "p", "offer": "o", "sku": "s", "version": "1.0.0"}},
                "extensionProfile": {
                    "extensions": [
                        {
                            "name": "health",
                            "properties": {
                                "publisher": "Microsoft.ManagedServices",
                                "type": "ApplicationHealthLinux",
                                "typeHandlerVersion": "2.0",
                                "settings": {"protocol": "http", "port": 80, "requestPath": "/health"},
                            },
                        }
                    ]
                },
            },
        },
    }


def run_one(name: str) -> dict[str, Any]:
    sets, capacity = RUNS[name]
    with tempfile.TemporaryDirectory() as scratch:
        store = SqliteStore(Path(scratch) / "bench.db")
        clock = VirtualClock()
        config = SimulationConfig(seed=1, provision=Range(min=30, max=90), app_start=Range(min=0, max=0))
        engine = Engine(store=store, backend=SimulatedBackend(config), clock=clock, id_namespace="bench")
        services = Services(engine, capacity_limit=capacity)
        started = time.perf_counter()
        for index in range(sets):
            services.put_scale_set("sub", "rg", f"vmss{index:03d}", scale_set_body(capacity))
        engine.run_until(None, advance=False)
        created = time.perf_counter()
        passes_before = engine.passes
        rollout_start = clock.now()
        patch = {"properties": {"virtualMachineProfile": {"storageProfile": {"imageReference": {"version": "2.0.0"}}}}}
        for index in range(sets):
            services.patch_scale_set("sub", "rg", f"vmss{index:03d}", patch)
        engine.run_until(None, advance=False)
        finished = time.perf_counter()
        virtual = clock.now() - rollout_start
        codes = sorted({state.rollout.code.value for state in engine.states() if state.rollout is not None})
        upgraded = sum(
            1 for state in engine.states() for record in state.instances.values() if record.image_version == "2.0.0"
        )
        store.close()
    wall = finished - created
    return {
        "run": name,
        "scaleSets": sets,
        "instancesPerSet": capacity,
        "rolloutWallSeconds": round(wall, 3),
        "totalWallSeconds": round(finished - started, 3),
        "rolloutVirtualSeconds": round(virtual, 1),
        "virtualPerWall": round(virtual / wall, 1) if wall else None,
        "passes": engine.passes - passes_before,
        "peakRssMiB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rolloutStatus": codes,
        "instancesUpgraded": upgraded,
    }


def main(argv: list[str]) -> int:
    if argv:
        print(json.dumps(run_one(argv[0])))
        return 0
    rows = []
    for name in RUNS:
        out = subprocess.run([sys.executable, __file__, name], capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout))
    header = (
        f"{'run':>8} {'rollout wall s':>14} {'total wall s':>12} {'virtual s':>10} {'virtual/wall':>12} "
        f"{'passes':>7} {'peak MiB':>9} {'status':>10} {'upgraded':>9}"
    )
    print(header)
    for r in rows:
        print(
            f"{r['run']:>8} {r['rolloutWallSeconds']:>14} {r['totalWallSeconds']:>12} "
            f"{r['rolloutVirtualSeconds']:>10} {r['virtualPerWall']:>12} {r['passes']:>7} {r['peakRssMiB']:>9} "
            f"{','.join(r['rolloutStatus']):>10} {r['instancesUpgraded']:>9}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
