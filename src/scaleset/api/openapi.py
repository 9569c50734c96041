"""An OpenAPI 3.0 description of the ARM routes this server emulates, served at ``GET /_scaleset/openapi.json``.

It is this emulator's own compact description, written for fuzzing (``tests/fuzz``) and for readers: paths and
parameters as ARM spells them, request bodies with the fields the emulator reads, responses with the shapes it
answers and ARM's error envelope for every failure. It is not the official Microsoft.Compute specification (the
API tests check response shapes against that one); objects allow fields beyond the ones listed, as ARM's do.

The document is built once, by code; only ``servers`` depends on the request. ``tests/fuzz/test_openapi_document.py``
keeps it in step with the route table in :mod:`scaleset.api.app` (every ARM route and method, nothing more).
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from scaleset.api.http import json_response
from scaleset.api.runtime import Runtime

JSON = "application/json"
API_VERSION = "2024-11-01"

Schema = dict[str, Any]

# ---------------------------------------------------------------------- small schema helpers


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(properties: dict[str, Schema] | None = None, *, required: list[str] | None = None) -> Schema:
    """A JSON object that also allows fields not listed (ARM's objects are open)."""
    out: Schema = {"type": "object", "properties": properties or {}}
    if required:
        out["required"] = required
    return out


def _str(**extra: Any) -> Schema:
    return {"type": "string", **extra}


def _int(**extra: Any) -> Schema:
    return {"type": "integer", **extra}


BOOL: Schema = {"type": "boolean"}
DURATION: Schema = _str(description="ISO 8601 duration, e.g. PT5M")


def _array(items: Schema, **extra: Any) -> Schema:
    return {"type": "array", "items": items, **extra}


# ---------------------------------------------------------------------- components

ROLLING_POLICY = _obj(
    {
        "maxBatchInstancePercent": _int(minimum=5, maximum=100),
        "maxUnhealthyInstancePercent": _int(minimum=5, maximum=100),
        "maxUnhealthyUpgradedInstancePercent": _int(minimum=0, maximum=100),
        "pauseTimeBetweenBatches": DURATION,
        "enableCrossZoneUpgrade": BOOL,
        "prioritizeUnhealthyInstances": BOOL,
        "rollbackFailedInstancesOnPolicyBreach": BOOL,
        "maxSurge": BOOL,
    }
)

EXTENSION = _obj(
    {
        "name": _str(),
        "properties": _obj(
            {
                "publisher": _str(),
                "type": _str(),
                "typeHandlerVersion": _str(),
                "autoUpgradeMinorVersion": BOOL,
                "settings": _obj(),
                "protectedSettings": _obj(),
            }
        ),
    }
)

VM_PROFILE = _obj(
    {
        "osProfile": _obj({"computerNamePrefix": _str(), "adminUsername": _str(), "adminPassword": _str()}),
        "storageProfile": _obj(
            {
                "imageReference": _obj(
                    {"publisher": _str(), "offer": _str(), "sku": _str(), "version": _str(), "id": _str()}
                ),
                "osDisk": _obj({"createOption": _str(), "caching": _str(), "diskSizeGB": _int()}),
            }
        ),
        "networkProfile": _obj({"healthProbe": _obj({"id": _str()}), "networkInterfaceConfigurations": _array(_obj())}),
        "extensionProfile": _obj({"extensions": _array(EXTENSION)}),
    }
)

SCALE_SET_PROPERTIES = _obj(
    {
        "upgradePolicy": _obj(
            {
                "mode": _str(enum=["Manual", "Automatic", "Rolling"]),
                "rollingUpgradePolicy": ROLLING_POLICY,
                "automaticOSUpgradePolicy": _obj({"enableAutomaticOSUpgrade": BOOL, "disableAutomaticRollback": BOOL}),
            }
        ),
        "automaticRepairsPolicy": _obj({"enabled": BOOL, "gracePeriod": DURATION, "repairAction": _str()}),
        "scaleInPolicy": _obj({"rules": _array(_str(enum=["Default", "OldestVM", "NewestVM"])), "forceDeletion": BOOL}),
        "virtualMachineProfile": VM_PROFILE,
        "orchestrationMode": _str(enum=["Uniform", "Flexible"]),
        "overprovision": BOOL,
        "singlePlacementGroup": BOOL,
        "platformFaultDomainCount": _int(),
        "zoneBalance": BOOL,
        "provisioningState": {**_str(), "readOnly": True},
        "uniqueId": {**_str(), "readOnly": True},
        "timeCreated": {**_str(), "readOnly": True},
    }
)

SKU = _obj({"name": _str(), "tier": _str(), "capacity": _int(minimum=0, maximum=1000)})
TAGS: Schema = {"type": "object", "additionalProperties": _str()}
ZONES = _array(_str())

READ_ONLY_RESOURCE = {
    "id": {**_str(), "readOnly": True},
    "name": {**_str(), "readOnly": True},
    "type": {**_str(), "readOnly": True},
}

COMPONENTS: dict[str, Schema] = {
    "ErrorDetail": _obj(
        {"code": _str(), "message": _str(), "target": _str(), "details": _array(_ref("ErrorDetail"))},
        required=["code", "message"],
    ),
    "ErrorResponse": _obj({"error": _ref("ErrorDetail")}, required=["error"]),
    "Subscription": _obj(
        {"id": _str(), "subscriptionId": _str(), "tenantId": _str(), "displayName": _str(), "state": _str()},
        required=["id", "subscriptionId"],
    ),
    "SubscriptionList": _obj({"value": _array(_ref("Subscription"))}, required=["value"]),
    "ResourceGroup": _obj(
        {
            **READ_ONLY_RESOURCE,
            "location": _str(minLength=1),
            "tags": TAGS,
            "properties": _obj({"provisioningState": {**_str(), "readOnly": True}}),
        },
        required=["location"],
    ),
    "ResourceGroupList": _obj({"value": _array(_ref("ResourceGroup"))}, required=["value"]),
    "VirtualMachineScaleSet": _obj(
        {
            **READ_ONLY_RESOURCE,
            "location": _str(minLength=1),
            "tags": TAGS,
            "sku": SKU,
            "zones": ZONES,
            "etag": {**_str(), "readOnly": True},
            "properties": SCALE_SET_PROPERTIES,
        },
        required=["location"],
    ),
    "VirtualMachineScaleSetUpdate": _obj(
        {"tags": TAGS, "sku": SKU, "zones": ZONES, "properties": SCALE_SET_PROPERTIES}
    ),
    "VirtualMachineScaleSetList": _obj({"value": _array(_ref("VirtualMachineScaleSet"))}, required=["value"]),
    "InstanceViewStatus": _obj(
        {"code": _str(), "level": _str(), "displayStatus": _str(), "message": _str(), "time": _str()}
    ),
    "VirtualMachineScaleSetInstanceView": _obj(
        {
            "virtualMachine": _obj({"statusesSummary": _array(_obj({"code": _str(), "count": _int()}))}),
            "extensions": _array(_obj()),
            "statuses": _array(_ref("InstanceViewStatus")),
        }
    ),
    "SkuList": _obj(
        {"value": _array(_obj({"resourceType": _str(), "sku": _obj(), "capacity": _obj()}))}, required=["value"]
    ),
    "InstanceIds": _obj({"instanceIds": _array(_str())}),
    "RequiredInstanceIds": _obj({"instanceIds": _array(_str(), minItems=1)}, required=["instanceIds"]),
    "OrchestrationServiceStateInput": _obj(
        {"serviceName": _str(enum=["AutomaticRepairs"]), "action": _str(enum=["Suspend", "Resume"])},
        required=["serviceName", "action"],
    ),
    "OSUpgradeHistoryList": _obj(
        {
            "value": _array(
                _obj(
                    {
                        "type": _str(),
                        "location": _str(),
                        "properties": _obj(
                            {
                                "runningStatus": _obj(
                                    {
                                        "code": _str(enum=["RollingForward", "Cancelled", "Completed", "Faulted"]),
                                        "startTime": _str(),
                                        "endTime": _str(),
                                    }
                                ),
                                "progress": _obj(),
                                "startedBy": _str(enum=["Unknown", "User", "Platform"]),
                                "targetImageReference": _obj(),
                                "rollbackInfo": _obj(
                                    {
                                        "successfullyRolledbackInstanceCount": _int(),
                                        "failedRolledbackInstanceCount": _int(),
                                        "rollbackError": _ref("ErrorDetail"),
                                    }
                                ),
                                "error": _ref("ErrorDetail"),
                            }
                        ),
                    }
                )
            )
        },
        required=["value"],
    ),
    "RollingUpgradeStatus": _obj(
        {
            "location": _str(),
            "type": _str(),
            "properties": _obj(
                {
                    "policy": ROLLING_POLICY,
                    "runningStatus": _obj(
                        {
                            "code": _str(enum=["RollingForward", "Cancelled", "Completed", "Faulted"]),
                            "startTime": _str(),
                            "lastAction": _str(enum=["Start", "Cancel"]),
                            "lastActionTime": _str(),
                        }
                    ),
                    "progress": _obj(
                        {
                            "successfulInstanceCount": _int(),
                            "failedInstanceCount": _int(),
                            "inProgressInstanceCount": _int(),
                            "pendingInstanceCount": _int(),
                        }
                    ),
                    "error": _ref("ErrorDetail"),
                }
            ),
        },
        required=["properties"],
    ),
    "ProtectionPolicy": _obj({"protectFromScaleIn": BOOL, "protectFromScaleSetActions": BOOL}),
    "VirtualMachineScaleSetVM": _obj(
        {
            **READ_ONLY_RESOURCE,
            "instanceId": {**_str(), "readOnly": True},
            "location": {**_str(), "readOnly": True},
            "sku": _obj(),
            "zones": ZONES,
            "properties": _obj(
                {
                    "latestModelApplied": {**BOOL, "readOnly": True},
                    "protectionPolicy": _ref("ProtectionPolicy"),
                    "provisioningState": {**_str(), "readOnly": True},
                    "instanceView": _ref("VirtualMachineScaleSetVMInstanceView"),
                }
            ),
        }
    ),
    "VirtualMachineScaleSetVMList": _obj({"value": _array(_ref("VirtualMachineScaleSetVM"))}, required=["value"]),
    "VirtualMachineScaleSetVMInstanceView": _obj(
        {
            "platformFaultDomain": _int(),
            "computerName": _str(),
            "statuses": _array(_ref("InstanceViewStatus")),
            "extensions": _array(_obj()),
            "vmHealth": _obj({"status": _ref("InstanceViewStatus")}),
        }
    ),
    "OperationStatus": _obj(
        {
            "name": _str(),
            "status": _str(enum=["InProgress", "Succeeded", "Failed", "Canceled"]),
            "startTime": _str(),
            "endTime": _str(),
            "error": _ref("ErrorDetail"),
        },
        required=["status"],
    ),
}

# ---------------------------------------------------------------------- parameters and responses

PARAMETERS: dict[str, Schema] = {
    "SubscriptionId": {"name": "subscriptionId", "in": "path", "required": True, "schema": _str(minLength=1)},
    "ResourceGroupName": {"name": "resourceGroupName", "in": "path", "required": True, "schema": _str(minLength=1)},
    "VmScaleSetName": {"name": "vmScaleSetName", "in": "path", "required": True, "schema": _str(minLength=1)},
    "InstanceId": {"name": "instanceId", "in": "path", "required": True, "schema": _str(minLength=1)},
    "Location": {"name": "location", "in": "path", "required": True, "schema": _str(minLength=1)},
    "OperationId": {"name": "operationId", "in": "path", "required": True, "schema": _str(minLength=1)},
    "ApiVersion": {
        "name": "api-version",
        "in": "query",
        "required": True,
        "description": "Any non-empty version is accepted; without one the answer is 400 MissingApiVersionParameter.",
        "schema": _str(minLength=1, example=API_VERSION),
    },
    "Filter": {
        "name": "$filter",
        "in": "query",
        "required": False,
        "description": "Only 'properties/latestModelApplied eq true' and '... eq false' are supported.",
        "schema": _str(),
    },
    "Expand": {
        "name": "$expand",
        "in": "query",
        "required": False,
        "schema": _str(enum=["instanceView"]),
    },
    "ForceDeletion": {
        "name": "forceDeletion",
        "in": "query",
        "required": False,
        "description": "true skips the graceful shutdown of the deleted instances; true or false in any case.",
        "schema": BOOL,
    },
}

ERROR_TEXT = {
    400: "Bad request: a missing api-version, an invalid parameter or body",
    401: "Missing, malformed or foreign bearer token",
    404: "The subscription, resource group or resource was not found",
    409: "The operation conflicts with the resource's state (a rolling upgrade in progress, a deletion)",
    415: "The request body is not JSON",
}

LRO_HEADERS = {
    "Azure-AsyncOperation": {"description": "Operation status URL", "schema": _str()},
    "retry-after-ms": {"description": "Suggested polling interval in milliseconds", "schema": _str()},
}


def _error(status: int) -> Schema:
    return {"description": ERROR_TEXT[status], "content": {JSON: {"schema": _ref("ErrorResponse")}}}


def _ok(description: str, schema_name: str | None = None, headers: dict[str, Schema] | None = None) -> Schema:
    out: Schema = {"description": description}
    if schema_name is not None:
        out["content"] = {JSON: {"schema": _ref(schema_name)}}
    if headers:
        out["headers"] = headers
    return out


def _accepted() -> Schema:
    return _ok(
        "Accepted: poll Azure-AsyncOperation or Location",
        headers={**LRO_HEADERS, "Location": {"description": "Operation result URL", "schema": _str()}},
    )


def _operation(
    operation_id: str,
    summary: str,
    success: dict[int, Schema],
    *,
    errors: tuple[int, ...] = (400, 401, 404),
    body: str | None = None,
    body_required: bool = True,
    query: tuple[str, ...] = (),
) -> Schema:
    responses: dict[str, Schema] = {str(code): response for code, response in success.items()}
    codes = set(errors) | ({415} if body is not None else set())
    for code in sorted(codes):
        responses[str(code)] = _error(code)
    out: Schema = {
        "operationId": operation_id,
        "summary": summary,
        "parameters": [{"$ref": f"#/components/parameters/{name}"} for name in ("ApiVersion", *query)],
        "responses": responses,
    }
    if body is not None:
        out["requestBody"] = {"required": body_required, "content": {JSON: {"schema": _ref(body)}}}
    return out


def _path(parameters: tuple[str, ...], **operations: Schema) -> Schema:
    return {"parameters": [{"$ref": f"#/components/parameters/{name}"} for name in parameters], **operations}


SUB = "/subscriptions/{subscriptionId}"
RG = SUB + "/resourceGroups/{resourceGroupName}"
VMSS = RG + "/providers/Microsoft.Compute/virtualMachineScaleSets/{vmScaleSetName}"
VM = VMSS + "/virtualMachines/{instanceId}"
LOCATION = SUB + "/providers/Microsoft.Compute/locations/{location}"

SUB_P = ("SubscriptionId",)
RG_P = (*SUB_P, "ResourceGroupName")
VMSS_P = (*RG_P, "VmScaleSetName")
VM_P = (*VMSS_P, "InstanceId")
OP_P = (*SUB_P, "Location", "OperationId")

SCALE_SET_ACTIONS = {
    "manualupgrade": ("VirtualMachineScaleSets_UpdateInstances", "Bring instances to the latest model", True),
    "reimage": ("VirtualMachineScaleSets_Reimage", "Reimage instances (all when no ids are given)", False),
    "reimageall": ("VirtualMachineScaleSets_ReimageAll", "Reimage instances and their data disks", False),
    "restart": ("VirtualMachineScaleSets_Restart", "Restart instances", False),
    "start": ("VirtualMachineScaleSets_Start", "Start instances", False),
    "poweroff": ("VirtualMachineScaleSets_PowerOff", "Power off instances", False),
    "deallocate": ("VirtualMachineScaleSets_Deallocate", "Deallocate instances", False),
    "delete": ("VirtualMachineScaleSets_DeleteInstances", "Delete instances (capacity drops)", True),
}
VM_ACTIONS = {
    "reimage": "Reimage",
    "reimageall": "ReimageAll",
    "restart": "Restart",
    "start": "Start",
    "poweroff": "PowerOff",
    "deallocate": "Deallocate",
}


def _paths() -> dict[str, Schema]:
    conflict = (400, 401, 404, 409)
    paths: dict[str, Schema] = {
        "/subscriptions": _path(
            (),
            get=_operation(
                "Subscriptions_List", "List subscriptions", {200: _ok("OK", "SubscriptionList")}, errors=(400, 401)
            ),
        ),
        SUB: _path(
            SUB_P, get=_operation("Subscriptions_Get", "Get the subscription", {200: _ok("OK", "Subscription")})
        ),
        SUB + "/resourcegroups": _path(
            SUB_P, get=_operation("ResourceGroups_List", "List resource groups", {200: _ok("OK", "ResourceGroupList")})
        ),
        RG: _path(
            RG_P,
            put=_operation(
                "ResourceGroups_CreateOrUpdate",
                "Create or update a resource group",
                {200: _ok("Updated", "ResourceGroup"), 201: _ok("Created", "ResourceGroup")},
                errors=conflict,
                body="ResourceGroup",
            ),
            get=_operation("ResourceGroups_Get", "Get a resource group", {200: _ok("OK", "ResourceGroup")}),
            head=_operation(
                "ResourceGroups_CheckExistence",
                "Whether a resource group exists",
                {204: _ok("It exists"), 404: _ok("It does not exist")},
                errors=(400, 401),
            ),
            delete=_operation(
                "ResourceGroups_Delete",
                "Delete a resource group and its scale sets",
                {
                    200: _ok("Deleted (it held no scale sets)"),
                    202: _ok(
                        "Deleting its scale sets: poll Location",
                        headers={"Location": {"description": "Deletion result URL", "schema": _str()}},
                    ),
                    204: _ok("There was nothing to delete"),
                },
            ),
        ),
        SUB + "/operationresults/{operationId}": _path(
            (*SUB_P, "OperationId"),
            get=_operation(
                "ResourceGroups_DeletionResult",
                "A resource group deletion's result",
                {
                    200: _ok("The group is gone"),
                    202: _ok("Still deleting", headers={"Location": {"schema": _str()}}),
                },
            ),
        ),
        SUB + "/providers/Microsoft.Compute/virtualMachineScaleSets": _path(
            SUB_P,
            get=_operation(
                "VirtualMachineScaleSets_ListAll",
                "List the subscription's scale sets",
                {200: _ok("OK", "VirtualMachineScaleSetList")},
            ),
        ),
        LOCATION + "/virtualMachineScaleSets": _path(
            (*SUB_P, "Location"),
            get=_operation(
                "VirtualMachineScaleSets_ListByLocation",
                "List the subscription's scale sets in one location",
                {200: _ok("OK", "VirtualMachineScaleSetList")},
            ),
        ),
        RG + "/providers/Microsoft.Compute/virtualMachineScaleSets": _path(
            RG_P,
            get=_operation(
                "VirtualMachineScaleSets_List",
                "List the group's scale sets",
                {200: _ok("OK", "VirtualMachineScaleSetList")},
            ),
        ),
        VMSS: _path(
            VMSS_P,
            put=_operation(
                "VirtualMachineScaleSets_CreateOrUpdate",
                "Create or update a scale set",
                {
                    200: _ok("Updated", "VirtualMachineScaleSet", LRO_HEADERS),
                    201: _ok("Created", "VirtualMachineScaleSet", LRO_HEADERS),
                },
                errors=conflict,
                body="VirtualMachineScaleSet",
            ),
            patch=_operation(
                "VirtualMachineScaleSets_Update",
                "Update a scale set",
                {200: _ok("Updated", "VirtualMachineScaleSet", LRO_HEADERS)},
                errors=conflict,
                body="VirtualMachineScaleSetUpdate",
            ),
            get=_operation(
                "VirtualMachineScaleSets_Get", "Get a scale set", {200: _ok("OK", "VirtualMachineScaleSet")}
            ),
            delete=_operation(
                "VirtualMachineScaleSets_Delete",
                "Delete a scale set",
                {202: _accepted(), 204: _ok("There was nothing to delete")},
                errors=conflict,
                query=("ForceDeletion",),
            ),
        ),
        VMSS + "/instanceView": _path(
            VMSS_P,
            get=_operation(
                "VirtualMachineScaleSets_GetInstanceView",
                "The scale set's instance view",
                {200: _ok("OK", "VirtualMachineScaleSetInstanceView")},
            ),
        ),
        VMSS + "/skus": _path(
            VMSS_P,
            get=_operation(
                "VirtualMachineScaleSets_ListSkus", "Sizes the scale set can take", {200: _ok("OK", "SkuList")}
            ),
        ),
        VMSS + "/rollingUpgrades/cancel": _path(
            VMSS_P,
            post=_operation(
                "VirtualMachineScaleSetRollingUpgrades_Cancel",
                "Cancel the rolling upgrade in progress",
                {202: _accepted()},
                errors=conflict,
            ),
        ),
        VMSS + "/rollingUpgrades/latest": _path(
            VMSS_P,
            get=_operation(
                "VirtualMachineScaleSetRollingUpgrades_GetLatest",
                "The latest rolling upgrade",
                {200: _ok("OK", "RollingUpgradeStatus")},
            ),
        ),
        VMSS + "/osRollingUpgrade": _path(
            VMSS_P,
            post=_operation(
                "VirtualMachineScaleSetRollingUpgrades_StartOSUpgrade",
                "Roll every instance to the newest image version (no automatic rollback)",
                {202: _accepted()},
                errors=conflict,
            ),
        ),
        VMSS + "/extensionRollingUpgrade": _path(
            VMSS_P,
            post=_operation(
                "VirtualMachineScaleSetRollingUpgrades_StartExtensionUpgrade",
                "Roll extensions with enableAutomaticUpgrade to their newest published versions",
                {202: _accepted()},
                errors=conflict,
            ),
        ),
        VMSS + "/osUpgradeHistory": _path(
            VMSS_P,
            get=_operation(
                "VirtualMachineScaleSets_GetOSUpgradeHistory",
                "The last five OS upgrades of the past two months",
                {200: _ok("OK", "OSUpgradeHistoryList")},
            ),
        ),
        VMSS + "/approveRollingUpgrade": _path(
            VMSS_P,
            post=_operation(
                "VirtualMachineScaleSets_ApproveRollingUpgrade",
                "Let deferred instances of the running OS upgrade go ahead (all when no ids are given)",
                {202: _accepted()},
                errors=conflict,
                body="InstanceIds",
                body_required=False,
            ),
        ),
        VMSS + "/setOrchestrationServiceState": _path(
            VMSS_P,
            post=_operation(
                "VirtualMachineScaleSets_SetOrchestrationServiceState",
                "Suspend or resume automatic repairs",
                {202: _accepted()},
                errors=conflict,
                body="OrchestrationServiceStateInput",
            ),
        ),
    }
    for action, (operation_id, summary, required) in SCALE_SET_ACTIONS.items():
        paths[f"{VMSS}/{action}"] = _path(
            VMSS_P,
            post=_operation(
                operation_id,
                summary,
                {202: _accepted()},
                errors=conflict,
                body="RequiredInstanceIds" if required else "InstanceIds",
                body_required=required,
                query=("ForceDeletion",) if action == "delete" else (),
            ),
        )
    paths[VMSS + "/virtualMachines"] = _path(
        VMSS_P,
        get=_operation(
            "VirtualMachineScaleSetVMs_List",
            "List the scale set's VMs",
            {200: _ok("OK", "VirtualMachineScaleSetVMList")},
            query=("Filter", "Expand"),
        ),
    )
    paths[VM] = _path(
        VM_P,
        get=_operation(
            "VirtualMachineScaleSetVMs_Get", "Get a VM", {200: _ok("OK", "VirtualMachineScaleSetVM")}, query=("Expand",)
        ),
        put=_operation(
            "VirtualMachineScaleSetVMs_Update",
            "Update a VM (only properties.protectionPolicy is taken)",
            {200: _ok("OK", "VirtualMachineScaleSetVM")},
            errors=conflict,
            body="VirtualMachineScaleSetVM",
        ),
        delete=_operation(
            "VirtualMachineScaleSetVMs_Delete",
            "Delete a VM",
            {202: _accepted()},
            errors=conflict,
            query=("ForceDeletion",),
        ),
    )
    paths[VM + "/instanceView"] = _path(
        VM_P,
        get=_operation(
            "VirtualMachineScaleSetVMs_GetInstanceView",
            "A VM's instance view",
            {200: _ok("OK", "VirtualMachineScaleSetVMInstanceView")},
        ),
    )
    for action, verb in VM_ACTIONS.items():
        paths[f"{VM}/{action}"] = _path(
            VM_P,
            post=_operation(
                f"VirtualMachineScaleSetVMs_{verb}",
                f"{action} one VM",
                {202: _accepted()},
                errors=conflict,
            ),
        )
    paths[VM + "/approveRollingUpgrade"] = _path(
        VM_P,
        post=_operation(
            "VirtualMachineScaleSetVMs_ApproveRollingUpgrade",
            "Let this deferred instance of the running OS upgrade go ahead",
            {202: _accepted()},
            errors=conflict,
        ),
    )
    paths[LOCATION + "/operations/{operationId}"] = _path(
        OP_P,
        get=_operation(
            "Operations_GetStatus", "A long-running operation's status", {200: _ok("OK", "OperationStatus")}
        ),
    )
    paths[LOCATION + "/operationResults/{operationId}"] = _path(
        OP_P,
        get=_operation(
            "Operations_GetResult",
            "A long-running operation's result",
            {
                200: _ok("The operation failed: its error", "ErrorResponse"),
                202: _ok("Still running", headers={"Location": {"schema": _str()}}),
                204: _ok("The operation succeeded"),
            },
        ),
    )
    return paths


@functools.cache
def _document() -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "scaleset: emulated Azure Resource Manager routes for VM Scale Sets",
            "version": API_VERSION,
            "description": 'Every failure answers with ARM\'s error envelope {"error": {"code", "message"}}. '
            "Paths match case-insensitively; any api-version is accepted.",
        },
        "paths": _paths(),
        "components": {
            "schemas": COMPONENTS,
            "parameters": PARAMETERS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
        "security": [{"bearer": []}],
    }


def document(base_url: str | None = None) -> dict[str, Any]:
    """The OpenAPI document; with ``base_url``, ``servers`` names it. A fresh copy: callers may change it."""
    out = copy.deepcopy(_document())
    if base_url is not None:
        out["servers"] = [{"url": base_url}]
    return out


async def serve(request: Request, runtime: Runtime) -> Response:
    """``GET /_scaleset/openapi.json``: open, like the identity routes (it holds nothing secret)."""
    return json_response(request, document(str(request.base_url).rstrip("/")))
