"""Audit fixtures: a scale set written as a base plus a patch, with optional live instances and expectations.

A fixture file under ``fixtures/audit/<RULE>/`` is named ``fail_*.json`` (the rule must report it) or ``pass_*.json``
(it must not). Its keys:

* ``base``: a body in ``fixtures/audit/bases/`` (``clean`` passes every rule);
* ``patch``: merged into the base: objects merge key by key, any other value replaces, ``null`` deletes the key;
* ``instances``: live instances (the fields of ``InstanceFacts``), absent for a file input;
* ``unresolved``: paths the loader could not evaluate, as ``ScaleSetInput.unresolved``;
* ``expect``: for a failing fixture, the severity of the first finding and texts its message, reason and fix contain.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scaleset.domain.validation import parse_scale_set
from scaleset.safety.inputs import InstanceFacts, ScaleSetInput

ROOT = Path(__file__).parent / "fixtures" / "audit"
SHARED = ("bases", "e2e")  # folders of ROOT that hold no rule's fixtures


def merge(base: Any, patch: Any) -> Any:
    """``patch`` applied to ``base``: objects merge, ``None`` deletes, anything else replaces."""
    if not isinstance(base, dict) or not isinstance(patch, dict):
        return patch
    out = dict(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge(out.get(key), value)
    return out


@dataclass(frozen=True)
class Fixture:
    rule_id: str
    path: Path
    data: dict[str, Any]

    @property
    def fails(self) -> bool:
        return self.path.stem.startswith("fail_")

    @property
    def label(self) -> str:
        return f"{self.rule_id}/{self.path.stem}"

    def target(self) -> ScaleSetInput:
        base = json.loads((ROOT / "bases" / f"{self.data.get('base', 'clean')}.json").read_text())
        body = merge(base, self.data.get("patch", {}))
        raw = self.data.get("instances")
        instances = None if raw is None else tuple(InstanceFacts(**item) for item in raw)
        return ScaleSetInput(
            name=self.data.get("name") or "web",
            origin=f"fixture {self.label}",
            body=body,
            model=parse_scale_set(body),
            instances=instances,
            unresolved=dict(self.data.get("unresolved", {})),
        )


def fixtures(rule_id: str | None = None) -> list[Fixture]:
    """Every fixture, or those of one rule, in name order."""
    folders = [ROOT / rule_id] if rule_id else sorted(p for p in ROOT.iterdir() if p.is_dir() and p.name not in SHARED)
    return [
        Fixture(folder.name, file, json.loads(file.read_text()))
        for folder in folders
        if folder.is_dir()
        for file in sorted(folder.glob("*.json"))
    ]
