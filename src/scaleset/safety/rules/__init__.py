"""Every ``scaleset audit`` rule, one module each, listed in :data:`RULES` in id order.

A new rule is a module with a ``RULE`` (see :mod:`scaleset.safety.rules.base`), an entry here, a page in
``docs/rules/<ID>.md`` and fixtures in ``tests/safety/fixtures/audit/<ID>/``; the tests fail when one is missing.
"""

from __future__ import annotations

from scaleset.safety.rules import (
    auto_extension_upgrade_without_health,
    auto_os_ignores_rolling_policy,
    auto_os_preconditions,
    auto_os_upgrade_off,
    batch_exceeds_unhealthy,
    cross_zone_batches,
    encryption_at_host,
    extension_plaintext_secrets,
    health_signal_missing,
    health_signal_quality,
    health_source_required,
    health_wait_exceeds_platform,
    image_end_of_life,
    instances_per_zone,
    linux_password_auth,
    max_surge_headroom,
    orchestration_uniform,
    pause_shorter_than_warmup,
    protected_instances,
    public_ip_per_instance,
    repair_grace_short,
    repair_replace_discards_state,
    repairs_disabled,
    repairs_suspended,
    rollback_disabled,
    rolling_policy_live_outside_rolling,
    tiny_set_zero_tolerance,
    unhealthy_before_rollout,
    unhealthy_gate_disabled,
    uniform_only_features,
    upgrade_mode_automatic,
    upgrade_mode_manual,
    windows_automatic_updates,
    zero_upgraded_tolerance,
    zone_balance_strict,
    zone_spanning,
)
from scaleset.safety.rules.base import Finding, Rule, Severity

RULES: tuple[Rule, ...] = tuple(
    sorted(
        (
            health_source_required.RULE,
            health_signal_missing.RULE,
            upgrade_mode_automatic.RULE,
            upgrade_mode_manual.RULE,
            tiny_set_zero_tolerance.RULE,
            batch_exceeds_unhealthy.RULE,
            unhealthy_gate_disabled.RULE,
            rollback_disabled.RULE,
            zero_upgraded_tolerance.RULE,
            pause_shorter_than_warmup.RULE,
            health_wait_exceeds_platform.RULE,
            auto_os_upgrade_off.RULE,
            auto_os_preconditions.RULE,
            auto_os_ignores_rolling_policy.RULE,
            rolling_policy_live_outside_rolling.RULE,
            auto_extension_upgrade_without_health.RULE,
            windows_automatic_updates.RULE,
            uniform_only_features.RULE,
            max_surge_headroom.RULE,
            zone_spanning.RULE,
            instances_per_zone.RULE,
            zone_balance_strict.RULE,
            cross_zone_batches.RULE,
            repairs_disabled.RULE,
            repair_grace_short.RULE,
            repair_replace_discards_state.RULE,
            repairs_suspended.RULE,
            unhealthy_before_rollout.RULE,
            protected_instances.RULE,
            health_signal_quality.RULE,
            orchestration_uniform.RULE,
            image_end_of_life.RULE,
            linux_password_auth.RULE,
            extension_plaintext_secrets.RULE,
            public_ip_per_instance.RULE,
            encryption_at_host.RULE,
        ),
        key=lambda rule: rule.id,
    )
)
BY_ID: dict[str, Rule] = {rule.id: rule for rule in RULES}

__all__ = ["BY_ID", "RULES", "Finding", "Rule", "Severity"]
