"""The scenario file format, and loading it with errors that name the line or key.

```yaml
scaleset:            # the ARM JSON body of the scale set (what a PUT would send)
  location: westus
  sku: {name: Standard_D2s_v3, capacity: 10}
  properties: {...}
simulation:          # how simulated instances behave (all optional)
  seed: 7
  provision: [30, 90]          # seconds, or ISO 8601 durations
  faults:
    - {kind: never_healthy, image_version: 2.0.0}
timeline:            # operator actions, at offsets from the start
  - {at: PT1M, patch: {properties: {...}}}
  - {at: PT20M, cancel: {}}
expect:              # optional: what must hold at the end
  rollingUpgrade: {runningStatus.code: Completed}
  instances: {count: 10, byImageVersion: {"2.0.0": 10}}
```
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from scaleset.backends.simulated import SimulationConfig
from scaleset.domain.durations import parse_duration

ACTIONS = (
    "patch",
    "put",
    "update_instances",
    "reimage",
    "reimage_all",
    "scale",
    "cancel",
    "set_health",
    "delete_instances",
    "protect",
    "restart",
    "power_off",
    "deallocate",
    "start",
    "publish_image",
    "publish_extension",
    "kill_instance",
    "os_upgrade",
    "approve",
    "orchestration",
)


class ScenarioError(Exception):
    """A scenario file that cannot be run; the message names the line or the key."""


class Step(BaseModel):
    """One timeline entry: ``at`` plus exactly one action."""

    model_config = ConfigDict(extra="forbid")

    at: float = 0.0
    patch: dict[str, Any] | None = None
    put: dict[str, Any] | None = None
    update_instances: list[str | int] | Literal["*"] | None = None
    reimage: list[str | int] | Literal["*"] | None = None
    reimage_all: list[str | int] | Literal["*"] | None = None
    delete_instances: list[str | int] | None = None
    restart: list[str | int] | Literal["*"] | None = None
    power_off: list[str | int] | Literal["*"] | None = None
    deallocate: list[str | int] | Literal["*"] | None = None
    start: list[str | int] | Literal["*"] | None = None
    scale: int | None = Field(default=None, ge=0)
    cancel: dict[str, Any] | None = None
    set_health: SetHealth | None = None
    protect: Protect | None = None
    publish_image: PublishImage | None = None
    publish_extension: PublishExtension | None = None
    kill_instance: list[str | int] | None = None  # the application dies: it stops answering health probes
    os_upgrade: dict[str, Any] | None = None  # POST osRollingUpgrade
    approve: list[str | int] | Literal["*"] | None = None  # approveRollingUpgrade ("*": the whole scale set)
    orchestration: Orchestration | None = None  # setOrchestrationServiceState

    @field_validator("at", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return parse_duration(value)
            except ValueError as exc:
                raise ValueError(f"{value!r} is not an ISO 8601 duration such as PT5M") from exc
        return value

    @model_validator(mode="after")
    def _one_action(self) -> Step:
        given = [name for name in ACTIONS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                f"each timeline entry needs exactly one action of {', '.join(ACTIONS)}; got "
                f"{', '.join(given) or 'none'}"
            )
        return self

    @property
    def action(self) -> str:
        return next(name for name in ACTIONS if getattr(self, name) is not None)


class SetHealth(BaseModel):
    model_config = ConfigDict(extra="forbid")
    instances: list[str | int] | Literal["*"] = "*"
    answer: Literal["healthy", "unhealthy", "invalid", "none"]


class PublishImage(BaseModel):
    """A new image version reaches the catalogue; scale sets tracking ``latest`` may start an OS upgrade."""

    model_config = ConfigDict(extra="forbid")
    version: str = Field(min_length=1)
    excludeFromLatest: bool = False


class PublishExtension(BaseModel):
    """A new extension version; extensions with ``enableAutomaticUpgrade`` of the same major upgrade to it."""

    model_config = ConfigDict(extra="forbid")
    publisher: str = Field(min_length=1)
    type: str = Field(min_length=1)
    version: str = Field(min_length=1)


class Orchestration(BaseModel):
    model_config = ConfigDict(extra="forbid")
    serviceName: str = "AutomaticRepairs"
    action: str


class Protect(BaseModel):
    model_config = ConfigDict(extra="forbid")
    instances: list[str | int]
    protectFromScaleIn: bool = True
    protectFromScaleSetActions: bool = False


class InstanceExpectations(BaseModel):
    model_config = ConfigDict(extra="forbid")
    count: int | None = None
    byImageVersion: dict[str, int] | None = None
    latestModelApplied: int | None = None
    staleModel: int | None = None
    healthy: int | None = None


class Expectations(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rollingUpgrade: dict[str, Any] | None = None
    instances: InstanceExpectations | None = None
    operations: list[str] | None = None  # the final status of every operation, in order
    rejected: list[str] | None = None  # error codes of timeline requests that were refused, in order


class Simulation(SimulationConfig):
    until: float = Field(default=7 * 86400.0, gt=0)

    @field_validator("until", mode="before")
    @classmethod
    def _until(cls, value: Any) -> Any:
        return parse_duration(value) if isinstance(value, str) else value


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    description: str | None = None
    subscription: str = "00000000-0000-0000-0000-000000000000"
    resourceGroup: str = "rg"
    scaleSetName: str = "vmss"
    scaleset: dict[str, Any]
    simulation: Simulation = Field(default_factory=Simulation)
    timeline: list[Step] = Field(default_factory=list)
    expect: Expectations | None = None


Step.model_rebuild()


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _line_of(text: str, loc: tuple[int | str, ...]) -> int | None:
    """The line of the YAML node at ``loc``, following mappings and sequences."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return None
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if k.value == part), None)
            if match is None:
                break
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            break
        line = node.start_mark.line + 1
    return line


def parse_scenario(text: str, *, source: str = "<scenario>") -> Scenario:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "somewhere"
        raise ScenarioError(f"{source}: not valid YAML at {where}: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: a scenario is a YAML mapping with 'scaleset', 'simulation' and 'timeline'")
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(p for p in first["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        clean = tuple(p for p in loc if p not in ("list[union[str,int]]", "literal['*']"))
        line = _line_of(text, clean)
        at = f"line {line}, " if line else ""
        message = first["msg"].removeprefix("Value error, ")
        raise ScenarioError(f"{source}: {at}{_where(clean)}: {message}") from exc


def load_scenario(path: str | Path) -> Scenario:
    file = Path(path)
    try:
        text = file.read_text()
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read the scenario file: {exc.strerror}") from exc
    return parse_scenario(text, source=str(path))
