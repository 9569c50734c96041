"""``scaleset drift``: how far a live scale set is from its own model, and from the file that should describe it.

* Instances not on the latest model: count, ids, and the image versions they run.
* Protected instances: ``protectFromScaleSetActions`` instances are skipped by every upgrade (rolling, automatic,
  manual), so a stale one stays stale; ``protectFromScaleIn`` alone does not stop upgrades.
* With a template or Terraform plan (``--against``): the upgrade- and model-relevant fields (``RELEVANT_PATHS``)
  whose value in the file differs from the live model, as dotted ARM paths with both values. The rules follow what
  deploying the file would do: a field the file leaves out (or sets to null) keeps the live value, so it is not
  drift; arrays are replaced whole, so an extension or data disk only one side has is drift. List items are matched
  by ``name`` (``extensions[HealthExtension]``) or ``lun`` (``dataDisks[lun=0]``). Read-only fields
  (``exactVersion``, ``provisioningState``) and values unresolved offline are not compared; an absent value equals
  an empty or false one (Azure echoes ``[]`` and ``false`` for what was never set).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from scaleset.cli.output import AZ_BOX
from scaleset.safety.inputs import ScaleSetInput, is_relevant, on_relevant_path

READ_ONLY = frozenset({"exactVersion", "provisioningState", "protectedSettings", "adminPassword"})
CASE_SENSITIVE = ("requestPath", "customData", "commandToExecute")
MODE_NOTE = {
    "Manual": "Manual mode: they keep their model until update-instances or a reimage",
    "Automatic": "Automatic mode: they should be updating now; if they stay stale, look for failed updates",
    "Rolling": "Rolling mode: the next rolling upgrade takes them, in batches",
}


@dataclass(frozen=True)
class Difference:
    path: str
    file: Any
    live: Any
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "file": self.file, "live": self.live, "note": self.note}


@dataclass(frozen=True)
class Drift:
    live: ScaleSetInput
    stale: tuple[str, ...]
    stale_by_version: dict[str, list[str]]
    versions: dict[str, int]
    unknown_model: tuple[str, ...]
    protected_actions: tuple[str, ...]
    protected_scale_in: tuple[str, ...]
    against: ScaleSetInput | None = None
    differences: tuple[Difference, ...] = ()

    @property
    def skipped(self) -> tuple[str, ...]:
        """Stale instances that upgrades will skip: protected from scale-set actions."""
        stale = set(self.stale)
        return tuple(i for i in self.protected_actions if i in stale)

    @property
    def drifted(self) -> bool:
        return bool(self.stale or self.differences)

    def to_json(self) -> dict[str, Any]:
        total = len(self.live.instances or ())
        out: dict[str, Any] = {
            "scaleSet": {
                "name": self.live.name,
                "resourceGroup": self.live.resource_group,
                "origin": self.live.origin,
                "upgradeMode": str(self.live.model.upgrade_mode),
                "capacity": self.live.model.capacity,
            },
            "instances": {
                "total": total,
                "latestModel": total - len(self.stale) - len(self.unknown_model),
                "stale": {"count": len(self.stale), "ids": list(self.stale), "byImageVersion": self.stale_by_version},
                "unknownModel": list(self.unknown_model),
                "imageVersions": self.versions,
                "protected": {
                    "fromScaleSetActions": list(self.protected_actions),
                    "fromScaleIn": list(self.protected_scale_in),
                    "skippedByUpgrades": list(self.skipped),
                },
            },
            "against": None,
            "drift": self.drifted,
        }
        if self.against is not None:
            out["against"] = {
                "name": self.against.name,
                "origin": self.against.origin,
                "differences": [d.to_json() for d in self.differences],
                "notCompared": sorted(self.against.unresolved),
            }
        return out


# ---------------------------------------------------------------------------------------------- instances


def _by_id(ids: list[str]) -> list[str]:
    return sorted(ids, key=lambda i: (0, int(i), "") if i.isdigit() else (1, 0, i))


def drift(live: ScaleSetInput, against: ScaleSetInput | None = None) -> Drift:
    instances = live.instances or ()
    stale = _by_id([i.instance_id for i in instances if i.latest_model_applied is False])
    by_version: dict[str, list[str]] = {}
    versions: dict[str, int] = {}
    for item in instances:
        version = item.image_version or "unknown"
        versions[version] = versions.get(version, 0) + 1
        if item.latest_model_applied is False:
            by_version.setdefault(version, []).append(item.instance_id)
    return Drift(
        live=live,
        stale=tuple(stale),
        stale_by_version={v: _by_id(ids) for v, ids in sorted(by_version.items())},
        versions=dict(sorted(versions.items())),
        unknown_model=tuple(_by_id([i.instance_id for i in instances if i.latest_model_applied is None])),
        protected_actions=tuple(_by_id([i.instance_id for i in instances if i.protect_from_scale_set_actions])),
        protected_scale_in=tuple(
            _by_id(
                [i.instance_id for i in instances if i.protect_from_scale_in and not i.protect_from_scale_set_actions]
            )
        ),
        against=against,
        differences=tuple(model_differences(against, live)) if against is not None else (),
    )


# ---------------------------------------------------------------------------------------------- the model


def _empty(value: Any) -> bool:
    return value is None or value is False or value in ("", [], {})


def _scalar(value: Any, path: str) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return value if path.endswith(CASE_SENSITIVE) else value.lower()
    return value


def same(a: Any, b: Any, path: str = "") -> bool:
    """Equal as deployed: absent equals empty or false, numbers equal their strings, enums and ids ignore case."""
    if _empty(a) and _empty(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return all(same(a.get(k), b.get(k), f"{path}.{k}") for k in set(a) | set(b) if k not in READ_ONLY)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y, path) for x, y in zip(a, b, strict=True))
    return bool(_scalar(a, path) == _scalar(b, path))


def _item_key(item: Any) -> str | None:
    if isinstance(item, dict):
        if item.get("name") is not None:
            return str(item["name"])
        if item.get("lun") is not None:
            return f"lun={item['lun']}"
    return None


class _Differ:
    def __init__(self, skip: set[str]) -> None:
        self.skip = skip
        self.found: list[Difference] = []

    def skipped(self, path: str) -> bool:
        return any(path == s or path.startswith((f"{s}.", f"{s}[")) for s in self.skip)

    def add(self, path: str, file: Any, live: Any, note: str | None = None) -> None:
        if not self.skipped(path):
            self.found.append(Difference(path, file, live, note))

    def declared(self, raw: Any, file: Any, live: Any, path: str) -> None:
        """Walk what the file declares (objects merge: keys it leaves out keep the live value)."""
        if path and not on_relevant_path(path):
            return
        if isinstance(raw, dict) and isinstance(file, dict):
            for key, value in raw.items():
                if value is None or key in READ_ONLY:
                    continue
                child = f"{path}.{key}" if path else key
                self.declared(value, file.get(key), live.get(key) if isinstance(live, dict) else None, child)
        elif is_relevant(path):
            self.whole(file, live, path)

    def whole(self, file: Any, live: Any, path: str) -> None:
        """Compare everything under ``path`` (arrays are replaced whole)."""
        if self.skipped(path):
            return
        if isinstance(file, list) and isinstance(live, list) and any(_item_key(i) for i in file + live):
            self.items(file, live, path)
        elif isinstance(file, dict) and isinstance(live, dict):
            for key in [*file, *(k for k in live if k not in file)]:
                if key not in READ_ONLY:
                    self.whole(file.get(key), live.get(key), f"{path}.{key}")
        elif isinstance(file, list) and isinstance(live, list) and path.endswith(("zones", "rules")):
            if sorted(map(str, file)) != sorted(map(str, live)):
                self.add(path, file, live)
        elif not same(file, live, path):
            self.add(path, file, live)

    def items(self, file: list[Any], live: list[Any], path: str) -> None:
        mine = {(_item_key(item) or str(index)).lower(): item for index, item in enumerate(file)}
        theirs = {(_item_key(item) or str(index)).lower(): item for index, item in enumerate(live)}
        for key, item in mine.items():
            shown = _item_key(item) or key
            if key not in theirs:
                self.add(f"{path}[{shown}]", shown, None, "only in the file: deploying it adds this")
            else:
                self.whole(item, theirs[key], f"{path}[{shown}]")
        for key, item in theirs.items():
            if key not in mine:
                shown = _item_key(item) or key
                self.add(f"{path}[{shown}]", None, shown, "only live: deploying the file removes this")


def model_differences(file: ScaleSetInput, live: ScaleSetInput) -> list[Difference]:
    """Fields under ``RELEVANT_PATHS`` where deploying ``file`` would change ``live``, in the file's order."""
    differ = _Differ(set(file.unresolved) | set(live.unresolved))
    differ.declared(file.body, file.model.model_dump(mode="json"), live.model.model_dump(mode="json"), "")
    return differ.found


# ---------------------------------------------------------------------------------------------- text


def _ids(ids: tuple[str, ...] | list[str], limit: int = 20) -> str:
    shown = ", ".join(ids[:limit])
    return shown + (f", ... ({len(ids) - limit} more)" if len(ids) > limit else "")


def _value(value: Any) -> str:
    if value is None:
        return "(not set)"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def print_text(result: Drift, console: Console) -> None:
    live = result.live
    total = len(live.instances or ())
    mode = str(live.model.upgrade_mode)
    console.print(
        f"[bold]{live.name}[/bold] ({live.origin}, group {live.resource_group}): {mode} mode, {total} instances"
    )
    if result.stale:
        console.print(f"Not on the latest model: {len(result.stale)} of {total}: {_ids(result.stale)}")
        for version, ids in result.stale_by_version.items():
            console.print(f"  image {version}: {len(ids)} ({_ids(ids)})")
        console.print(f"  {MODE_NOTE.get(mode, '')}")
    else:
        console.print(f"Every instance is on the latest model ({total}).")
    if result.unknown_model:
        console.print(f"Model state not reported: {_ids(result.unknown_model)}")
    running = ", ".join(f"{v} x{n}" for v, n in result.versions.items())
    console.print(f"Image versions running: {running or 'none'}")
    if result.protected_actions:
        skipped = f" ({len(result.skipped)} of them not on the latest model)" if result.skipped else ""
        console.print(
            f"Protected from scale-set actions, skipped by every upgrade: {_ids(result.protected_actions)}{skipped}"
        )
    if result.protected_scale_in:
        console.print(f"Protected from scale-in only (upgrades still take them): {_ids(result.protected_scale_in)}")
    if result.against is None:
        return
    count = len(result.differences)
    console.print(
        f"Against {result.against.origin}: {count} field{'s' if count != 1 else ''} differ"
        + (":" if count else " (every upgrade- and model-relevant field the file sets matches).")
    )
    if result.against.unresolved:
        console.print(f"  not compared (unresolved in the file): {', '.join(sorted(result.against.unresolved))}")
    if not count:
        return
    table = Table(box=AZ_BOX, pad_edge=False)
    for column in ("path", "file", "live", "note"):
        table.add_column(column, overflow="fold")
    for d in result.differences:
        table.add_row(d.path, _value(d.file), _value(d.live), d.note or "")
    console.print(table)
