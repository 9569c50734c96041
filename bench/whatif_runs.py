"""``scaleset what-if --runs``: a seeded Monte Carlo of one rollout, timed.

The scale set: 100 instances in three zones, Rolling, 20% batches, a PT30S pause, the Application Health extension
(rich); the change: a new image version; 5% of the instances deployed with it never turn healthy, so some runs
fault. Each run is the whole rollout in virtual time through the engine and the simulated backend (instances
provisioning in 30-90 s), from the state right after the change, built once and copied per run. The target
(issue 6): 1,000 runs of a 100-instance rollout in at most 10 s on the 2-core CI machine.

    python bench/whatif_runs.py                 # 1000 runs, 100 instances, one worker per core
    python bench/whatif_runs.py 200 50 --jobs 1 # runs, instances, workers

Printed: runs, instances, workers, setup seconds, wall seconds for the runs (setup included), runs per second, CPU
seconds (this process and its workers: what the runs cost whatever else the machine is doing), and the Monte Carlo's
figures (abort probability, duration and lowest capacity p50) so a change in behaviour shows.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from typing import Any

from scaleset.domain.validation import parse_scale_set
from scaleset.safety.inputs import ScaleSetInput
from scaleset.safety.whatif import Change, Options, WhatIf

HEALTH = {
    "name": "HealthExtension",
    "properties": {
        "publisher": "Microsoft.ManagedServices",
        "type": "ApplicationHealthLinux",
        "typeHandlerVersion": "2.0",
        "settings": {"protocol": "http", "port": 80, "requestPath": "/health"},
    },
}


def scale_set_body(capacity: int) -> dict[str, Any]:
    return {
        "location": "westus",
        "zones": ["1", "2", "3"],
        "sku": {"name": "Standard_D2s_v3", "capacity": capacity},
        "properties": {
            "upgradePolicy": {
                "mode": "Rolling",
                "rollingUpgradePolicy": {"maxBatchInstancePercent": 20, "pauseTimeBetweenBatches": "PT30S"},
            },
            "virtualMachineProfile": {
                "storageProfile": {"imageReference": {"publisher": "p", "offer": "o", "sku": "s", "version": "1.0.0"}},
                "extensionProfile": {"extensions": [HEALTH]},
            },
        },
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=int, nargs="?", default=1000)
    parser.add_argument("instances", type=int, nargs="?", default=100)
    parser.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--bad-image", type=float, default=0.05)
    args = parser.parse_args(argv)
    body = scale_set_body(args.instances)
    scale_set = ScaleSetInput(name="bench", origin="bench", body=body, model=parse_scale_set(body))
    change = Change(sets=("virtualMachineProfile.storageProfile.imageReference.version=2.0.0",))
    started = time.perf_counter()
    cpu = time.process_time()
    whatif = WhatIf(scale_set, change, Options(seed=1, bad_image=args.bad_image))
    setup = time.perf_counter() - started
    result = whatif.monte_carlo(args.runs, jobs=args.jobs)
    wall = time.perf_counter() - started
    workers = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = time.process_time() - cpu + workers.ru_utime + workers.ru_stime
    print(f"{'runs':>6} {'instances':>9} {'jobs':>4} {'setup s':>8} {'wall s':>7} {'runs/s':>7} {'cpu s':>7}")
    print(
        f"{args.runs:>6} {args.instances:>9} {args.jobs:>4} {setup:>8.3f} {wall:>7.2f} "
        f"{args.runs / wall:>7.1f} {used:>7.2f}"
    )
    print(
        f"abort probability {result.abort_probability:.3f} "
        f"(95% {result.interval[0]:.3f}-{result.interval[1]:.3f}), "
        f"duration p50 {result.duration[1]:.0f} s, lowest capacity p50 {result.lowest_percent[1]:.0f}%"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
