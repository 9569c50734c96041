"""The scale-set resource as Microsoft.Compute 2024-11-01 spells it, with Azure's defaults.

Field names are ARM's own camelCase names, so a model dumps straight to the JSON a client sees. Every model
allows extra fields: what we do not model is kept and echoed back. Enum fields accept any letter case and are
stored in Azure's canonical spelling; booleans accept ``"true"``/``"false"`` strings (pydantic's lax mode).

Only shapes and defaults live here. The rules that reject a request (ranges, combinations, immutability) are in
:mod:`scaleset.domain.validation`; the arithmetic that reads these fields is in :mod:`scaleset.domain.fenceposts`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


def _canonical(enum: type[StrEnum]) -> BeforeValidator:
    """Accept an enum value in any letter case and return Azure's spelling (``"rolling"`` -> ``"Rolling"``)."""
    table = {member.value.lower(): member.value for member in enum}

    def normalise(value: Any) -> Any:
        if isinstance(value, str):
            return table.get(value.lower(), value)
        return value

    return BeforeValidator(normalise)


class UpgradeMode(StrEnum):
    MANUAL = "Manual"
    AUTOMATIC = "Automatic"
    ROLLING = "Rolling"


class OrchestrationMode(StrEnum):
    UNIFORM = "Uniform"
    FLEXIBLE = "Flexible"


class RepairAction(StrEnum):
    REPLACE = "Replace"
    RESTART = "Restart"
    REIMAGE = "Reimage"


class ScaleInRule(StrEnum):
    DEFAULT = "Default"
    OLDEST_VM = "OldestVM"
    NEWEST_VM = "NewestVM"


class ArmModel(BaseModel):
    """Base for every ARM object: unknown fields are kept, names are ARM's."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Sku(ArmModel):
    name: str | None = None
    tier: str | None = None
    capacity: int | None = None


class RollingUpgradePolicy(ArmModel):
    maxBatchInstancePercent: int = 20
    maxUnhealthyInstancePercent: int = 20
    maxUnhealthyUpgradedInstancePercent: int = 20
    pauseTimeBetweenBatches: str = "PT0S"
    enableCrossZoneUpgrade: bool = False
    prioritizeUnhealthyInstances: bool = False
    rollbackFailedInstancesOnPolicyBreach: bool = False
    maxSurge: bool = False


class AutomaticOSUpgradePolicy(ArmModel):
    enableAutomaticOSUpgrade: bool = False
    disableAutomaticRollback: bool = False
    useRollingUpgradePolicy: bool = False
    osRollingUpgradeDeferral: bool | None = None


class UpgradePolicy(ArmModel):
    mode: Annotated[UpgradeMode, _canonical(UpgradeMode)] = UpgradeMode.MANUAL
    rollingUpgradePolicy: RollingUpgradePolicy = Field(default_factory=RollingUpgradePolicy)
    automaticOSUpgradePolicy: AutomaticOSUpgradePolicy = Field(default_factory=AutomaticOSUpgradePolicy)


class AutomaticRepairsPolicy(ArmModel):
    enabled: bool = False
    gracePeriod: str = "PT10M"
    repairAction: Annotated[RepairAction, _canonical(RepairAction)] = RepairAction.REPLACE


class ScaleInPolicy(ArmModel):
    rules: list[Annotated[ScaleInRule, _canonical(ScaleInRule)]] = Field(default_factory=lambda: [ScaleInRule.DEFAULT])
    forceDeletion: bool = False
    prioritizeUnhealthyVMs: bool | None = None


class ApiEntityReference(ArmModel):
    id: str | None = None


class ImageReference(ArmModel):
    publisher: str | None = None
    offer: str | None = None
    sku: str | None = None
    version: str | None = None
    id: str | None = None
    sharedGalleryImageId: str | None = None
    communityGalleryImageId: str | None = None
    exactVersion: str | None = None


class ManagedDiskParameters(ArmModel):
    storageAccountType: str | None = None


class OSDisk(ArmModel):
    createOption: str | None = None
    caching: str | None = None
    diskSizeGB: int | None = None
    osType: str | None = None
    managedDisk: ManagedDiskParameters | None = None


class DataDisk(ArmModel):
    lun: int
    createOption: str
    diskSizeGB: int | None = None
    caching: str | None = None
    managedDisk: ManagedDiskParameters | None = None


class StorageProfile(ArmModel):
    imageReference: ImageReference | None = None
    osDisk: OSDisk | None = None
    dataDisks: list[DataDisk] | None = None


class OSProfile(ArmModel):
    computerNamePrefix: str | None = None
    adminUsername: str | None = None
    adminPassword: str | None = None  # write-only: never rendered
    customData: str | None = None


class ExtensionProperties(ArmModel):
    publisher: str | None = None
    type: str | None = None
    typeHandlerVersion: str | None = None
    autoUpgradeMinorVersion: bool | None = None
    enableAutomaticUpgrade: bool | None = None
    forceUpdateTag: str | None = None
    settings: dict[str, Any] | None = None
    protectedSettings: dict[str, Any] | None = None  # write-only: never rendered
    suppressFailures: bool | None = None
    provisionAfterExtensions: list[str] | None = None


class Extension(ArmModel):
    name: str | None = None
    properties: ExtensionProperties = Field(default_factory=ExtensionProperties)


class ExtensionProfile(ArmModel):
    extensions: list[Extension] | None = None
    extensionsTimeBudget: str | None = None


class NetworkProfile(ArmModel):
    healthProbe: ApiEntityReference | None = None
    networkInterfaceConfigurations: list[dict[str, Any]] | None = None


class VirtualMachineProfile(ArmModel):
    osProfile: OSProfile | None = None
    storageProfile: StorageProfile | None = None
    networkProfile: NetworkProfile | None = None
    extensionProfile: ExtensionProfile | None = None


class ScaleSetProperties(ArmModel):
    upgradePolicy: UpgradePolicy = Field(default_factory=UpgradePolicy)
    automaticRepairsPolicy: AutomaticRepairsPolicy | None = None
    scaleInPolicy: ScaleInPolicy = Field(default_factory=ScaleInPolicy)
    virtualMachineProfile: VirtualMachineProfile = Field(default_factory=VirtualMachineProfile)
    orchestrationMode: Annotated[OrchestrationMode, _canonical(OrchestrationMode)] = OrchestrationMode.UNIFORM
    overprovision: bool | None = None
    singlePlacementGroup: bool | None = None
    platformFaultDomainCount: int | None = None
    zoneBalance: bool | None = None
    # read-only, filled by the service
    provisioningState: str | None = None
    uniqueId: str | None = None
    timeCreated: str | None = None


class VirtualMachineScaleSet(ArmModel):
    """The ``VirtualMachineScaleSet`` resource body (without ``id``/``name``/``type``, which the edge adds)."""

    location: str | None = None
    tags: dict[str, str] | None = None
    sku: Sku = Field(default_factory=Sku)
    zones: list[str] | None = None
    properties: ScaleSetProperties = Field(default_factory=ScaleSetProperties)

    @property
    def capacity(self) -> int:
        return self.sku.capacity or 0

    @property
    def upgrade_mode(self) -> UpgradeMode:
        return self.properties.upgradePolicy.mode

    @property
    def rolling_policy(self) -> RollingUpgradePolicy:
        return self.properties.upgradePolicy.rollingUpgradePolicy

    @property
    def profile(self) -> VirtualMachineProfile:
        return self.properties.virtualMachineProfile

    @property
    def image(self) -> ImageReference | None:
        storage = self.profile.storageProfile
        return storage.imageReference if storage else None

    @property
    def extensions(self) -> list[Extension]:
        ext = self.profile.extensionProfile
        return list(ext.extensions or []) if ext else []


READ_ONLY_PROPERTIES = ("provisioningState", "uniqueId", "timeCreated")
WRITE_ONLY_PATHS = (("properties", "virtualMachineProfile", "osProfile", "adminPassword"),)
