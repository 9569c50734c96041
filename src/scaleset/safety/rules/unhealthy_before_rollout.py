"""SS028 (UP-014, live): more instances are unhealthy now than the next rollout tolerates.

The check before the first batch counts every unhealthy instance (failed, not running, Unhealthy or Unknown) against
``maxUnhealthyInstancePercent`` with a strict "more than", so the next rollout faults at once with
``MaxUnhealthyInstancePercentExceededBeforeRollingUpgrade``. Files have no instances and the rule is silent.
"""

from __future__ import annotations

from scaleset.domain import fenceposts
from scaleset.safety.inputs import ScaleSetInput
from scaleset.safety.rules import facts
from scaleset.safety.rules.base import Finding, Rule, Severity


def check(target: ScaleSetInput) -> list[Finding]:
    governing = facts.governing_policy(target)
    if target.instances is None or governing is None:
        return []
    n = len(target.instances)
    unhealthy = [i for i in target.instances if facts.is_unhealthy(i)]
    percent = governing.policy.maxUnhealthyInstancePercent
    if not fenceposts.exceeds(len(unhealthy), n, percent):
        return []
    return [
        RULE.finding(
            target,
            message=f"{len(unhealthy)} of {n} instances {facts.verb(len(unhealthy), 'is', 'are')} unhealthy now: the "
            "next rollout faults before its first batch",
            reason=(
                f"{facts.sentence(facts.ids(unhealthy))} {facts.verb(len(unhealthy), 'is', 'are')} unhealthy "
                f"({fenceposts.shown_percent(len(unhealthy), n)}%); "
                f"maxUnhealthyInstancePercent {percent} tolerates {fenceposts.tolerated(n, percent)} of {n}, so a "
                f"rollout ({governing.trigger}) stops at once with "
                "MaxUnhealthyInstancePercentExceededBeforeRollingUpgrade."
            ),
            fix="Repair, reimage or delete the unhealthy instances before the release (or start the rollout with "
            "prioritizeUnhealthyInstances after raising the threshold deliberately).",
            path=f"{governing.path}.maxUnhealthyInstancePercent" if governing.own else governing.path,
        )
    ]


RULE = Rule(
    id="SS028",
    severity=Severity.ERROR,
    title="Rollout would fault at once",
    summary="Live: the unhealthy instances already exceed maxUnhealthyInstancePercent.",
    check=check,
)
