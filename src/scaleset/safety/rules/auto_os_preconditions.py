"""SS013 (UP-009): automatic OS upgrade is on but a precondition is missing, so it never runs or is rewritten.

* The image is pinned: ``imageReference.version`` other than ``latest``, a gallery id ending in ``/versions/<v>``, or a
  managed image (only gallery images are upgraded). Error: no upgrade ever triggers.
* Windows with ``patchMode: AutomaticByPlatform``. Error: the combination is not allowed.
* Windows with ``enableAutomaticUpdates: true`` written. Warning: Azure forces it to false (a default left out is fine).
* Uniform with ``singlePlacementGroup: false`` and no load-balancer probe. Warning: multiple placement groups need a
  Standard LB probe.
"""

from __future__ import annotations

import re

from scaleset.domain.resources import OrchestrationMode
from scaleset.safety.inputs import ScaleSetInput
from scaleset.safety.rules import facts
from scaleset.safety.rules.base import Finding, Rule, Severity

_GALLERY_VERSION = re.compile(r"/galleries/[^/]+/images/[^/]+/versions/([^/]+)$", re.IGNORECASE)
_MANAGED_IMAGE = re.compile(r"/providers/Microsoft\.Compute/images/[^/]+$", re.IGNORECASE)


def pinned_image(target: ScaleSetInput) -> str | None:
    """How the image is pinned (``version 1.2.3``, ``gallery version 1.0.0``, ``a managed image``), or None."""
    image = target.model.image
    if image is None:
        return None
    for gallery_id in (image.id, image.sharedGalleryImageId, image.communityGalleryImageId):
        if gallery_id:
            match = _GALLERY_VERSION.search(gallery_id)
            if match:
                return f"gallery version {match.group(1)}"
            if _MANAGED_IMAGE.search(gallery_id):
                return "a managed image"
    version = image.version
    if version and version.lower() != "latest" and not version.startswith("["):
        return f"version {version}"
    return None


def check(target: ScaleSetInput) -> list[Finding]:
    if not facts.auto_os_enabled(target):
        return []
    out = []
    pinned = pinned_image(target)
    if pinned is not None:
        out.append(
            RULE.finding(
                target,
                message=f"Automatic OS upgrade is on but the image is pinned ({pinned}): no upgrade will ever start",
                reason="Automatic OS upgrade follows new versions of the image only when the model asks for the "
                "newest: version 'latest' for platform images, or a gallery image id without /versions/.",
                fix="Use version 'latest' (platform image) or the gallery image id without a version; or turn "
                "automatic OS upgrade off and roll versions out yourself.",
                path=facts.IMAGE,
                severity=Severity.ERROR,
            )
        )
    windows = f"{facts.OS_PROFILE}.windowsConfiguration"
    if facts.os_family(target) == "Windows" and not facts.unresolved(target, windows):
        if facts.dig(target.body, f"{windows}.patchSettings.patchMode") == "AutomaticByPlatform":
            out.append(
                RULE.finding(
                    target,
                    message="Automatic OS upgrade with Windows patchMode AutomaticByPlatform",
                    reason="Azure documents that automatic OS image upgrade requires patchMode other than "
                    "AutomaticByPlatform on Windows; the two patching mechanisms cannot both own the instances.",
                    fix="Choose one: automatic OS image upgrade (patchMode Manual) or platform-orchestrated patching.",
                    path=f"{windows}.patchSettings.patchMode",
                    severity=Severity.ERROR,
                )
            )
        if facts.dig(target.body, f"{windows}.enableAutomaticUpdates") in (True, "true", "True"):
            out.append(
                RULE.finding(
                    target,
                    message="Automatic OS upgrade with Windows enableAutomaticUpdates true written in the model",
                    reason="With automatic OS upgrade on, Azure forces enableAutomaticUpdates to false and it cannot "
                    "be true; the written value is rejected or silently rewritten, and the template drifts from the "
                    "resource (Checkov CKV_AZURE_177 wrongly asks for true here).",
                    fix="Set enableAutomaticUpdates false (or leave it out).",
                    path=f"{windows}.enableAutomaticUpdates",
                    severity=Severity.WARNING,
                )
            )
    single = target.model.properties.singlePlacementGroup
    uniform = target.model.properties.orchestrationMode is OrchestrationMode.UNIFORM
    if uniform and single is False and not facts.has_lb_probe(target):
        out.append(
            RULE.finding(
                target,
                message="Automatic OS upgrade on multiple placement groups without a load-balancer probe",
                reason="Azure documents that a set spanning multiple placement groups (singlePlacementGroup false) "
                "needs a Standard load-balancer health probe for automatic OS upgrade.",
                fix="Set networkProfile.healthProbe.id to a probe of a Standard load balancer.",
                path="properties.singlePlacementGroup",
                severity=Severity.WARNING,
            )
        )
    return out


RULE = Rule(
    id="SS013",
    severity=Severity.ERROR,
    title="Automatic OS upgrade precondition missing",
    summary="Automatic OS upgrade is on, but the image is pinned or a Windows/placement-group precondition fails.",
    check=check,
)
