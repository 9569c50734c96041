"""Health: the closed-form evaluation agrees with the probe-by-probe state machine, and the documented cases."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scaleset.domain.health import (
    Answer,
    HealthState,
    HealthTracker,
    ProbeSettings,
    Segment,
    evaluate,
    probe_settings,
)
from scaleset.domain.resources import VirtualMachineScaleSet


def track(settings_: ProbeSettings, started_at: float, segments: list[Segment], now: float) -> HealthTracker:
    tracker = HealthTracker(settings_, started_at=started_at)
    ordered = sorted(segments, key=lambda s: s.start)
    k = 0
    while (at := started_at + k * settings_.interval) <= now + 1e-9:
        answer = Answer.NONE
        for segment in ordered:
            if segment.start <= at + 1e-9:
                answer = segment.answer
        tracker.observe(answer, at)
        k += 1
    tracker.expire(now)
    return tracker


probe_configs = st.builds(
    ProbeSettings,
    source=st.just("extension"),
    protocol=st.sampled_from(["http", "tcp"]),
    interval=st.sampled_from([5.0, 10.0, 15.0]),
    probes=st.integers(1, 4),
    grace=st.sampled_from([0.0, 5.0, 20.0, 60.0, 120.0]),
    rich=st.booleans(),
)
segment_lists = st.lists(
    st.builds(Segment, start=st.integers(0, 200).map(float), answer=st.sampled_from(list(Answer))),
    max_size=5,
)


@settings(max_examples=400, deadline=None)
@given(probe_configs, st.integers(0, 30).map(float), segment_lists, st.integers(0, 300).map(float))
def test_closed_form_equals_state_machine(
    config: ProbeSettings, started_at: float, segments: list[Segment], now: float
) -> None:
    # Segments starting at the same instant are ambiguous; keep the last one, as both evaluators do.
    unique = list({s.start: s for s in segments}.values())
    expected = track(config, started_at, unique, now)
    got = evaluate(config, started_at=started_at, segments=unique, now=now)
    assert (got.state, got.since) == (expected.state, expected.since)


@settings(max_examples=200, deadline=None)
@given(probe_configs, segment_lists, st.integers(0, 300).map(float))
def test_next_change_is_never_late(config: ProbeSettings, segments: list[Segment], now: float) -> None:
    unique = list({s.start: s for s in segments}.values())
    got = evaluate(config, started_at=0.0, segments=unique, now=now)
    horizon = got.next_change if got.next_change is not None else now + 400
    step = 1.0
    t = now
    while t < horizon - 1e-9:
        assert evaluate(config, started_at=0.0, segments=unique, now=t).state is got.state
        t += step


RICH_HTTP = ProbeSettings("extension", protocol="http", interval=5, probes=2, grace=30, rich=True)
RICH_TCP = ProbeSettings("extension", protocol="tcp", port=80, interval=5, probes=2, grace=30, rich=True)
BINARY = ProbeSettings("extension", protocol="http", interval=5, probes=1, grace=5, rich=False)


@pytest.mark.parametrize(
    ("config", "segments", "now", "state"),
    [
        pytest.param(RICH_HTTP, [], 20, HealthState.INITIALIZING, id="rich-silent-within-grace"),
        pytest.param(RICH_HTTP, [], 31, HealthState.UNKNOWN, id="rich-http-silent-after-grace-unknown"),
        pytest.param(RICH_TCP, [], 31, HealthState.UNHEALTHY, id="rich-tcp-silent-after-grace-unhealthy"),
        pytest.param(RICH_HTTP, [Segment(0, Answer.INVALID)], 60, HealthState.UNKNOWN, id="rich-invalid-unknown"),
        pytest.param(RICH_HTTP, [Segment(7, Answer.HEALTHY)], 15, HealthState.HEALTHY, id="rich-healthy-2-probes"),
        pytest.param(RICH_HTTP, [Segment(7, Answer.HEALTHY)], 14, HealthState.INITIALIZING, id="one-probe-not-enough"),
        pytest.param(RICH_HTTP, [Segment(0, Answer.UNHEALTHY)], 5, HealthState.UNHEALTHY, id="rich-app-says-unhealthy"),
        pytest.param(
            RICH_HTTP,
            [Segment(0, Answer.HEALTHY), Segment(50, Answer.NONE)],
            60,
            HealthState.UNKNOWN,
            id="rich-crash-goes-unknown",
        ),
        pytest.param(BINARY, [], 0, HealthState.UNHEALTHY, id="binary-silence-is-unhealthy"),
        pytest.param(BINARY, [Segment(3, Answer.INVALID)], 20, HealthState.UNHEALTHY, id="binary-non-200"),
        pytest.param(BINARY, [Segment(3, Answer.HEALTHY)], 5, HealthState.HEALTHY, id="binary-200-healthy"),
    ],
)
def test_documented_states(config: ProbeSettings, segments: list[Segment], now: float, state: HealthState) -> None:
    assert evaluate(config, started_at=0.0, segments=segments, now=now).state is state


def test_health_state_codes() -> None:
    assert HealthState.HEALTHY.code == "HealthState/healthy"
    assert HealthState.UNKNOWN.code == "HealthState/unknown"


def _vmss(extensions: list[dict[str, object]], probe: str | None = None) -> VirtualMachineScaleSet:
    profile: dict[str, object] = {"extensionProfile": {"extensions": extensions}}
    if probe:
        profile["networkProfile"] = {"healthProbe": {"id": probe}}
    return VirtualMachineScaleSet.model_validate({"properties": {"virtualMachineProfile": profile}})


def test_probe_settings_from_extension() -> None:
    ext = {
        "name": "health",
        "properties": {
            "publisher": "Microsoft.ManagedServices",
            "type": "applicationhealthlinux",
            "typeHandlerVersion": "2.0",
            "settings": {
                "protocol": "HTTP",
                "port": 80,
                "requestPath": "/h",
                "intervalInSeconds": 10,
                "numberOfProbes": 3,
            },
        },
    }
    config = probe_settings(_vmss([ext]))
    assert config is not None
    assert (config.source, config.protocol, config.interval, config.probes, config.rich) == (
        "extension",
        "http",
        10.0,
        3,
        True,
    )
    assert config.grace == 30.0  # default: interval x probes


def test_probe_settings_from_lb_probe_and_none() -> None:
    config = probe_settings(_vmss([], probe="/subscriptions/s/.../probes/p"))
    assert config is not None and config.source == "loadBalancer"
    assert probe_settings(_vmss([])) is None
