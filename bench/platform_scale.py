"""The platform's own hands at scale, in virtual time with the SQLite store: an automatic OS upgrade after a
publish, and automatic repairs of many dead instances.

* ``os``: one scale set of 10,000 instances tracking ``latest`` with automatic OS upgrades; a newer version is
  published and the platform rolls it out with Azure's default batches (20%, no pause).
* ``repairs``: one scale set of 10,000 instances with automatic repairs (Replace, PT10M); the applications of 500
  instances (5%) die at once, and repairs replace them at most 5% (500) at a time.

Printed per run: wall seconds for the work after the event (and for the whole run), its virtual duration, their
ratio, passes, and what was done. Each run is its own process so peak memory is its own.

    python bench/platform_scale.py            # both
    python bench/platform_scale.py repairs    # one run: os or repairs
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
from scaleset.domain.health import Answer
from scaleset.engine.clock import VirtualClock
from scaleset.engine.engine import Engine
from scaleset.engine.services import Services
from scaleset.store import SqliteStore

SIZE = 10_000
IDS = ("00000000-0000-0000-0000-000000000000", "bench", "web")


def body(run: str) -> dict[str, Any]:
    upgrade: dict[str, Any] = {"mode": "Manual"}
    properties: dict[str, Any] = {"upgradePolicy": upgrade}
    if run == "os":
        upgrade["automaticOSUpgradePolicy"] = {"enableAutomaticOSUpgrade": True}
    else:
        properties["automaticRepairsPolicy"] = {"enabled": True, "gracePeriod": "PT10M", "repairAction": "Replace"}
    health = {
        "name": "health",
        "properties": {
            "publisher": "Microsoft.ManagedServices",
            "type": "ApplicationHealthLinux",
            "typeHandlerVersion": "2.0",
            "settings": {"protocol": "http", "port": 80, "requestPath": "/health"},
        },
    }
    properties["virtualMachineProfile"] = {
        "storageProfile": {"imageReference": {"publisher": "p", "offer": "o", "sku": "s", "version": "latest"}},
        "extensionProfile": {"extensions": [health]},
    }
    return {"location": "westus", "sku": {"name": "Standard_D2s_v3", "capacity": SIZE}, "properties": properties}


def measure(run: str) -> dict[str, Any]:
    images = ["1.0.0"]
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(str(Path(tmp) / "bench.db"))
        config = SimulationConfig(seed=1, provision=Range(min=30, max=90), app_start=Range(min=5, max=15))
        clock = VirtualClock(0.0)
        engine = Engine(store=store, backend=SimulatedBackend(config), clock=clock, catalogue=lambda _i: list(images))
        services = Services(engine, capacity_limit=SIZE)  # beyond Azure's 1,000, as bench/sim_scale.py
        started = time.perf_counter()
        services.put_scale_set(*IDS, body(run))
        engine.run_until(3600.0)
        state = engine.states()[0]
        passes_before = engine.passes
        event_at = clock.now()
        work_started = time.perf_counter()
        if run == "os":
            images.append("1.1.0")
            engine.catalogue_changed()
        else:
            services.set_health(*IDS, [str(i) for i in range(0, SIZE, SIZE // 500)], Answer.NONE)
        engine.run_until(None, advance=False)
        work_wall = time.perf_counter() - work_started
        total_wall = time.perf_counter() - started
        virtual = clock.now() - event_at
        views = engine.observe(state, clock.now())
        healthy = sum(1 for v in views if v.is_healthy)
        if run == "os":
            done = sum(1 for v in views if v.image_version == "1.1.0")
            outcome = state.rollout.code.value if state.rollout is not None else "none"
        else:
            done = state.record.next_instance_id - SIZE  # replacements created
            outcome = f"{len(views)} instances"
        store.close()
    return {
        "run": run,
        "work wall s": round(work_wall, 3),
        "total wall s": round(total_wall, 3),
        "virtual s": round(virtual, 1),
        "virtual/wall": round(virtual / work_wall, 1) if work_wall else None,
        "passes": engine.passes - passes_before,
        "done": done,
        "healthy": healthy,
        "outcome": outcome,
        "peak MiB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main(argv: list[str]) -> int:
    if argv[1:2] == ["--child"]:
        print(json.dumps(measure(argv[2])))
        return 0
    runs = argv[1:] or ["os", "repairs"]
    rows = []
    for run in runs:
        if run not in ("os", "repairs"):
            print(f"unknown run {run!r}: os or repairs", file=sys.stderr)
            return 2
        child = subprocess.run([sys.executable, __file__, "--child", run], capture_output=True, text=True, check=True)
        rows.append(json.loads(child.stdout.strip().splitlines()[-1]))
    columns = list(rows[0])
    print("  ".join(f"{c:>13}" for c in columns))
    for row in rows:
        print("  ".join(f"{row[c]!s:>13}" for c in columns))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
