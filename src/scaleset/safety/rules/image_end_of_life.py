"""SS032 (table row 17): the image is an OS release past its end of support.

Azure Advisor warns when an image version, offer or SKU is scheduled for deprecation; once deprecated the set cannot
scale out, and repairs that replace instances fail. Advisor needs the subscription; this rule knows a table of
marketplace images whose OS releases reached end of standard support (dates from the vendors' lifecycle pages).
"""

from __future__ import annotations

from scaleset.safety.inputs import ScaleSetInput
from scaleset.safety.rules import facts
from scaleset.safety.rules.base import Finding, Rule, Severity

# (publisher, offer substring, sku prefix) -> (release, end of support). Lower case; "" matches any sku.
END_OF_LIFE: dict[tuple[str, str, str], tuple[str, str]] = {
    ("canonical", "ubuntuserver", "16.04"): ("Ubuntu 16.04 LTS", "2021-04-30"),
    ("canonical", "ubuntuserver", "18.04"): ("Ubuntu 18.04 LTS", "2023-05-31"),
    ("canonical", "0001-com-ubuntu-server-bionic", ""): ("Ubuntu 18.04 LTS", "2023-05-31"),
    ("canonical", "0001-com-ubuntu-server-focal", ""): ("Ubuntu 20.04 LTS", "2025-05-31"),
    ("openlogic", "centos", "7"): ("CentOS 7", "2024-06-30"),
    ("openlogic", "centos", "8"): ("CentOS 8", "2021-12-31"),
    ("redhat", "rhel", "7"): ("RHEL 7", "2024-06-30"),
    ("debian", "debian-10", ""): ("Debian 10", "2024-06-30"),
    ("credativ", "debian", "9"): ("Debian 9", "2022-06-30"),
    ("microsoftwindowsserver", "windowsserver", "2008-r2"): ("Windows Server 2008 R2", "2020-01-14"),
    ("microsoftwindowsserver", "windowsserver", "2012"): ("Windows Server 2012 / 2012 R2", "2023-10-10"),
}


def end_of_life(publisher: str, offer: str, sku: str) -> tuple[str, str] | None:
    """``(release, end date)`` when the image matches the table."""
    for (pub, off, prefix), found in END_OF_LIFE.items():
        if publisher.lower() == pub and off in offer.lower() and sku.lower().startswith(prefix):
            return found
    return None


def check(target: ScaleSetInput) -> list[Finding]:
    image = target.model.image
    if image is None or not (image.publisher and image.offer and image.sku):
        return []
    found = end_of_life(image.publisher, image.offer, image.sku)
    if found is None:
        return []
    release, ended = found
    return [
        RULE.finding(
            target,
            message=f"The image {image.publisher}:{image.offer}:{image.sku} is {release}, out of support since {ended}",
            reason="An unsupported OS gets no security fixes, and once Azure deprecates the image the set cannot "
            f"scale out or replace instances: all {target.capacity} instances depend on an image that may vanish.",
            fix="Move to a supported release (a new image offer/SKU usually needs a new scale set, since publisher and "
            "offer are fixed at creation).",
            path=facts.IMAGE,
        )
    ]


RULE = Rule(
    id="SS032",
    severity=Severity.WARNING,
    title="Image out of support",
    summary="The marketplace image is an OS release past its end of support.",
    check=check,
)
