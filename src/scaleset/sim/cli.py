"""``scaleset sim FILE``: run a scenario in virtual time and show what Azure would have done."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from rich.console import Console

from scaleset.sim.report import build_report, print_text
from scaleset.sim.runner import ScenarioRun
from scaleset.sim.scenario import ScenarioError, load_scenario

EXIT_OK, EXIT_EXPECTATIONS, EXIT_BAD_FILE = 0, 1, 2


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "sim",
        help="run a scenario file in virtual time",
        description="Run a scenario file in virtual time and show every decision.",
    )
    parser.add_argument("file", help="the scenario file (YAML)")
    parser.add_argument("--seed", type=int, default=None, help="override the scenario's seed")
    parser.add_argument("--output", choices=("text", "json"), default="text")
    parser.add_argument(
        "--db", default=None, help="keep the run's SQLite database here (default: a temporary file, removed after)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        scenario = load_scenario(args.file)
    except ScenarioError as error:
        print(f"scaleset sim: {error}", file=sys.stderr)
        return EXIT_BAD_FILE
    with tempfile.TemporaryDirectory(prefix="scaleset-sim-") as scratch:
        db = Path(args.db) if args.db else Path(scratch) / "run.db"
        if db.exists():
            print(f"scaleset sim: {db} already exists; give a new path to --db", file=sys.stderr)
            return EXIT_BAD_FILE
        run_ = ScenarioRun.open(scenario, db=db, seed=args.seed)
        try:
            run_.run()
            report = build_report(run_)
        finally:
            run_.close()
    if args.output == "json":
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_text(report, Console(highlight=False))
    return EXIT_OK if all(c["ok"] for c in report["expectations"]) else EXIT_EXPECTATIONS
