"""SS010 (UP-007): the pause between batches is shorter than the warm-up the author declared.

The declared warm-up is the rich health extension's ``gracePeriod`` when the author wrote one: it says how long an
instance may take to come up. Azure waits for each upgraded instance to report Healthy, so the pause matters when the
application reports Healthy before it is really serving. Without a written ``gracePeriod`` the warm-up is unknown and
the rule stays silent (the default grace, interval x probes, is exactly what the health wait already covers).
"""

from __future__ import annotations

from scaleset.domain import fenceposts
from scaleset.safety.inputs import ScaleSetInput
from scaleset.safety.rules import facts
from scaleset.safety.rules.base import Finding, Rule, Severity


def check(target: ScaleSetInput) -> list[Finding]:
    governing = facts.governing_policy(target)
    probe = facts.health(target)
    written = facts.explicit_health_setting(target, "gracePeriod")
    if governing is None or probe is None or not probe.rich or not isinstance(written, int | float):
        return []
    n = target.capacity
    size = fenceposts.batch_size(n, governing.policy.maxBatchInstancePercent)
    count = facts.batches(n, size)
    pause = facts.duration_seconds(governing.policy.pauseTimeBetweenBatches)
    warmup = float(written)
    if count < 2 or pause is None or pause >= warmup:
        return []
    return [
        RULE.finding(
            target,
            message=f"pauseTimeBetweenBatches {governing.policy.pauseTimeBetweenBatches} is shorter than the "
            f"{warmup:g} s warm-up the health extension allows",
            reason=(
                f"The health extension's gracePeriod gives an instance {facts.seconds_text(warmup)} to come up; of the "
                f"{count} batches of {size}, each after the first starts {pause:g} s after the previous one is judged, "
                "so if the "
                "application reports Healthy before it is warm, the next batch takes capacity down while the last "
                f"one is still warming up ({governing.trigger})."
            ),
            fix=f"Set pauseTimeBetweenBatches to at least {facts.seconds_text(warmup)}, or make the health endpoint "
            "report Healthy only once the application serves (then suppress this rule with that reason).",
            path=f"{facts.ROLLING}.pauseTimeBetweenBatches" if governing.own else facts.AUTO_OS,
        )
    ]


RULE = Rule(
    id="SS010",
    severity=Severity.WARNING,
    title="Pause shorter than warm-up",
    summary="pauseTimeBetweenBatches is shorter than the health extension's written gracePeriod.",
    check=check,
)
