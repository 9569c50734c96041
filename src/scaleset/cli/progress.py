"""Waiting on long-running operations, and the live view of a rolling upgrade while one runs.

The view reads what any client can read: ``GET rollingUpgrades/latest`` (status, counts, the policy) and the
instance list with instance views (health, which instances run the latest model). The batch number is estimated
from the policy (``maxBatchInstancePercent`` of the instances; Azure does not report batches), so it carries a
``≈``. On a terminal it is a rich live panel on stderr; otherwise (CI logs, tests) a line on stderr each time
something changes. stdout stays for the result.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TextIO, TypeVar

from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError, ServiceRequestError
from azure.core.polling import LROPoller
from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from scaleset.cli.connect import Session
from scaleset.cli.errors import CliError
from scaleset.cli.output import flatten

T = TypeVar("T")

TERMINAL = frozenset({"Completed", "Faulted", "Cancelled"})


@dataclass(frozen=True)
class Snapshot:
    """What one look at the scale set showed."""

    status: dict[str, Any] | None  # the flattened rollingUpgrades/latest of *this* rollout, None before it starts
    instances: int
    latest_model: int
    healthy: int  # among the instances on the latest model (the only ones whose health Azure reports)

    @property
    def code(self) -> str | None:
        running = (self.status or {}).get("runningStatus") or {}
        code = running.get("code")
        return str(code) if code is not None else None

    def counts(self) -> dict[str, int]:
        progress = (self.status or {}).get("progress") or {}
        return {
            key: int(progress.get(f"{key}InstanceCount") or 0)
            for key in ("successful", "failed", "inProgress", "pending")
        }

    def batches(self) -> tuple[int, int, int] | None:
        """(current batch, batches, instances a batch), estimated from the policy; None before a rollout."""
        if self.status is None:
            return None
        counts = self.counts()
        total = sum(counts.values())
        if total == 0:
            return None
        policy = self.status.get("policy") or {}
        percent = int(policy.get("maxBatchInstancePercent") or 20)
        size = max(1, total * percent // 100)
        batches = math.ceil(total / size)
        done = (counts["successful"] + counts["failed"]) // size
        current = min(batches, done + 1) if counts["inProgress"] else min(batches, done)
        return current, batches, size

    def line(self, name: str) -> str:
        if self.status is None:
            return f"rolling upgrade {name}: waiting for a rollout to start · {self._fleet()}"
        counts = self.counts()
        parts = [f"rolling upgrade {name}: {self.code}"]
        batches = self.batches()
        if batches is not None:
            parts.append(f"batch ≈{batches[0]}/{batches[1]}")
        parts.append(
            f"succeeded {counts['successful']}, failed {counts['failed']}, "
            f"in progress {counts['inProgress']}, pending {counts['pending']}"
        )
        parts.append(self._fleet())
        error = self.status.get("error")
        if isinstance(error, dict):
            parts.append(f"({error.get('code')}) {error.get('message')}")
        return " · ".join(parts)

    def _fleet(self) -> str:
        # Azure reports an instance's health only once it runs the latest model, so health is counted among those.
        return f"latest model {self.latest_model}/{self.instances} ({self.healthy} healthy)"

    def render(self, name: str) -> Group:
        title = Text(f"Rolling upgrade of {name}: ", style="bold")
        if self.status is None:
            title.append("waiting for a rollout to start", style="yellow")
            return Group(title, Text(f"  {self._fleet()}"))
        code = self.code or "?"
        style = {"Completed": "green", "Faulted": "red", "Cancelled": "yellow"}.get(code, "cyan")
        title.append(code, style=f"bold {style}")
        running = self.status.get("runningStatus") or {}
        title.append(f"   started {running.get('startTime', '?')}, last action {running.get('lastAction', '?')}")
        counts = self.counts()
        total = sum(counts.values())
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        batches = self.batches()
        if batches is not None:
            each = f"{batches[2]} instance{'s' if batches[2] != 1 else ''} a batch"
            grid.add_row("batch", f"≈ {batches[0]} of {batches[1]} ({each}, estimated from the policy)")
        grid.add_row(
            "progress",
            ProgressBar(total=max(total, 1), completed=counts["successful"] + counts["failed"], width=40),
        )
        grid.add_row(
            "instances",
            f"{counts['successful']} succeeded · {counts['failed']} failed · "
            f"{counts['inProgress']} in progress · {counts['pending']} pending",
        )
        grid.add_row("fleet", self._fleet())
        error = self.status.get("error")
        if isinstance(error, dict):
            grid.add_row("error", Text(f"({error.get('code')}) {error.get('message')}", style="red"))
        return Group(title, grid)


class RolloutView(AbstractContextManager["RolloutView"]):
    """Polls and shows one scale set's rolling upgrade.

    ``since``: the ``startTime`` of the rollout that was latest before this command changed anything; that one is
    not shown (it is history). ``tolerant``: a failed look is skipped (the operation being waited on decides the
    outcome) instead of raised.
    """

    def __init__(
        self,
        session: Session,
        group: str,
        name: str,
        *,
        since: str | None = None,
        tolerant: bool = False,
        stream: TextIO | None = None,
    ) -> None:
        self.session = session
        self.group = group
        self.name = name
        self.since = since
        self.tolerant = tolerant
        self.console = Console(file=stream if stream is not None else sys.stderr, highlight=False)
        self.live: Live | None = None
        self.last: Snapshot | None = None
        self._last_line: str | None = None

    def __enter__(self) -> RolloutView:
        if self.console.is_terminal:
            self.live = Live(console=self.console, refresh_per_second=4, transient=False)
            self.live.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def poll(self) -> Snapshot | None:
        """Look once and show it; returns what was seen (None when a tolerant look failed)."""
        try:
            snapshot = self._look()
        except (HttpResponseError, ServiceRequestError):
            if self.tolerant:
                return None
            raise
        self.last = snapshot
        if self.live is not None:
            self.live.update(snapshot.render(self.name), refresh=True)
        else:
            line = snapshot.line(self.name)
            if line != self._last_line:
                self.console.print(line, soft_wrap=True)
                self._last_line = line
        return snapshot

    def _look(self) -> Snapshot:
        compute = self.session.compute
        status: dict[str, Any] | None
        try:
            status = flatten(
                compute.virtual_machine_scale_set_rolling_upgrades.get_latest(self.group, self.name).as_dict()
            )
        except ResourceNotFoundError:
            if not self.tolerant:
                raise
            status = None
        started = ((status or {}).get("runningStatus") or {}).get("startTime")
        if self.since is not None and started == self.since:
            status = None  # the rollout that was latest before this command: history, not this change
        vms = [
            vm.as_dict()
            for vm in compute.virtual_machine_scale_set_vms.list(self.group, self.name, expand="instanceView")
        ]
        on_latest = [vm for vm in vms if (vm.get("properties") or {}).get("latestModelApplied")]
        healthy = sum(1 for vm in on_latest if _health(vm) == "HealthState/healthy")
        latest = len(on_latest)
        return Snapshot(status, len(vms), latest, healthy)


def _health(vm: dict[str, Any]) -> str | None:
    view = (vm.get("properties") or {}).get("instanceView") or {}
    code = ((view.get("vmHealth") or {}).get("status") or {}).get("code")
    return str(code) if code is not None else None


def latest_start(session: Session, group: str, name: str) -> str | None:
    """The ``startTime`` of the latest rolling upgrade, or None when none has run (or it cannot be read)."""
    try:
        status = session.compute.virtual_machine_scale_set_rolling_upgrades.get_latest(group, name).as_dict()
    except ResourceNotFoundError:
        return None
    start = ((status.get("properties") or {}).get("runningStatus") or {}).get("startTime")
    return None if start is None else str(start)


def lro_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """``--no-wait``: send the request and return; no poller thread keeps polling behind the command's back."""
    return {"polling": False} if getattr(args, "no_wait", False) else {}


def finish(
    poller: LROPoller[T], args: argparse.Namespace, *, view: RolloutView | None = None, interval: float = 0.2
) -> T | None:
    """Wait (bounded by ``--timeout``) for a long-running operation, showing ``view`` meanwhile; its result."""
    if getattr(args, "no_wait", False):
        return None
    timeout: float = args.timeout
    deadline = time.monotonic() + timeout
    context: AbstractContextManager[Any] = view if view is not None else nullcontext()
    with context:
        while not poller.done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CliError(
                    "OperationTimedOut",
                    f"The operation is still running after {timeout:g} s (--timeout); it goes on on the server.",
                )
            if view is not None:
                view.poll()
            try:
                poller.wait(min(remaining, interval))
            except AzureError:
                break  # the operation failed; ``result()`` below raises it again, after the last look
        if view is not None:
            view.poll()
    return poller.result()
