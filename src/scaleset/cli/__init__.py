"""The ``scaleset`` client: ``az vmss``-style commands that speak ARM over HTTPS through the Azure SDK.

``scaleset vmss ...``, ``scaleset group ...``, ``scaleset fault ...``, ``scaleset image ...`` and
``scaleset extension ...`` talk to a running ``scaleset serve`` (found by itself: see :mod:`scaleset.cli.connect`)
or, with ``--cloud azure``, to Azure. This package never imports the server, the engine or the domain (an
import-linter contract holds it to that): everything goes over HTTP.
"""

from __future__ import annotations

from scaleset.cli import extensions, faults, groups, images, load, rolling, upgrades, vmss
from scaleset.cli.parsing import CliArgumentParser
from scaleset.cli.registry import Parents, SubParsers, group

__all__ = ["CliArgumentParser", "add_parsers"]


def add_parsers(sub: SubParsers) -> None:
    """Register ``vmss``, ``group``, ``fault``, ``image`` and ``extension`` next to the server's own verbs."""
    parents = Parents.build()
    vmss_sub = group(sub, "vmss", "manage scale sets, as az vmss does")
    vmss.register(vmss_sub, parents)
    upgrades.register(vmss_sub, parents)
    rolling.register(group(vmss_sub, "rolling-upgrade", "start, follow, wait for or cancel rolling upgrades"), parents)
    upgrades.register_extension(group(vmss_sub, "extension", "the scale set's extensions (upgrade only)"), parents)
    groups.register(group(sub, "group", "manage resource groups, as az group does"), parents)
    faults.register(group(sub, "fault", "inject faults and set instance health (local emulator only)"), parents)
    load.register(sub)
    images.register(group(sub, "image", "publish and list image versions (local emulator only)"), parents)
    extensions.register(group(sub, "extension", "publish and list extension versions (local emulator only)"), parents)
