"""The JSON Schema (draft 2020-12) of ``scaleset evidence --format json``."""

from __future__ import annotations

from typing import Any

_TIME: dict[str, Any] = {"type": ["string", "null"]}
_IDS: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
_NULLABLE_OBJECT: dict[str, Any] = {"type": ["object", "null"]}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "scaleset evidence report",
    "type": "object",
    "required": [
        "reportVersion",
        "scaleSet",
        "generated",
        "capacity",
        "policy",
        "thresholds",
        "status",
        "rollout",
        "batches",
        "rollback",
        "timeSeries",
        "faults",
        "instances",
        "activityLog",
        "notes",
    ],
    "additionalProperties": False,
    "properties": {
        "reportVersion": {"const": 1},
        "scaleSet": {
            "type": "object",
            "required": ["name", "resourceGroup", "source"],
            "properties": {
                "name": {"type": "string"},
                "resourceGroup": {"type": ["string", "null"]},
                "source": {"type": "string"},
            },
        },
        "generated": {"type": "string"},
        "capacity": {"type": "integer", "minimum": 0},
        "policy": {
            "type": "object",
            "required": ["mode", "rollingUpgradePolicy", "automaticOSUpgradePolicy"],
            "properties": {
                "mode": {"enum": ["Manual", "Automatic", "Rolling"]},
                "rollingUpgradePolicy": {
                    "type": "object",
                    "required": [
                        "maxBatchInstancePercent",
                        "maxUnhealthyInstancePercent",
                        "maxUnhealthyUpgradedInstancePercent",
                        "pauseTimeBetweenBatches",
                        "enableCrossZoneUpgrade",
                        "prioritizeUnhealthyInstances",
                        "rollbackFailedInstancesOnPolicyBreach",
                        "maxSurge",
                    ],
                },
                "automaticOSUpgradePolicy": {"type": "object"},
            },
        },
        "thresholds": {
            "type": "object",
            "required": ["maxUnhealthyInstancePercent", "minInService"],
            "properties": {
                "maxUnhealthyInstancePercent": {"type": "integer", "minimum": 0, "maximum": 100},
                "minInService": {"type": "integer", "minimum": 0},
            },
        },
        "status": {
            "type": ["object", "null"],
            "required": ["code", "startTime", "endTime", "lastAction", "progress", "error"],
            "properties": {
                "code": {"type": ["string", "null"]},
                "startTime": _TIME,
                "endTime": _TIME,
                "lastAction": {"type": ["string", "null"]},
                "progress": _NULLABLE_OBJECT,
                "error": {
                    "type": ["object", "null"],
                    "required": ["code", "message"],
                },
            },
        },
        "rollout": {
            "type": "object",
            "required": ["id", "targetModelVersion", "outcome"],
            "properties": {
                "id": {"type": ["string", "null"]},
                "targetModelVersion": {"type": ["string", "null"]},
                "outcome": {
                    "type": ["object", "null"],
                    "required": ["kind", "time", "code", "message"],
                    "properties": {
                        "kind": {"enum": ["rolloutCompleted", "rolloutFaulted", "rolloutCancelled"]},
                        "time": _TIME,
                    },
                },
            },
        },
        "batches": {
            "type": "array",
            "items": {
                "type": "object",
                "required": [
                    "number",
                    "instanceIds",
                    "zone",
                    "start",
                    "end",
                    "durationSeconds",
                    "verdict",
                    "succeededIds",
                    "failedIds",
                    "preBatchCheck",
                    "batchCompleted",
                ],
                "additionalProperties": False,
                "properties": {
                    "number": {"type": "integer", "minimum": 1},
                    "instanceIds": _IDS,
                    "surgeInstanceIds": {"type": ["array", "null"], "items": {"type": "string"}},
                    "zone": {"type": ["string", "null"]},
                    "start": _TIME,
                    "end": _TIME,
                    "durationSeconds": {"type": ["number", "null"], "minimum": 0},
                    "verdict": {"enum": ["Passed", "Breached", "InProgress"]},
                    "succeededIds": _IDS,
                    "failedIds": _IDS,
                    "preBatchCheck": {
                        "type": ["object", "null"],
                        "required": ["unhealthy", "total", "thresholdPercent", "tolerated", "passed"],
                    },
                    "batchCompleted": {
                        "type": ["object", "null"],
                        "required": ["upgradedUnhealthy", "upgraded", "thresholdPercent", "passed"],
                    },
                },
            },
        },
        "rollback": {
            "type": ["object", "null"],
            "required": ["instanceIds", "start", "end", "healthyIds"],
        },
        "timeSeries": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["time", "inService", "healthy"],
                "additionalProperties": False,
                "properties": {
                    "time": {"type": "string"},
                    "inService": {"type": "integer", "minimum": 0},
                    "healthy": {"type": "integer", "minimum": 0},
                },
            },
        },
        "faults": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["time", "label"],
                "properties": {"time": {"type": "string"}, "label": {"type": "string"}},
            },
        },
        "instances": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["instanceId", "zone", "imageVersion", "latestModelApplied", "health"],
                "properties": {"instanceId": {"type": "string"}},
            },
        },
        "activityLog": {
            "type": "object",
            "required": ["available", "events"],
            "properties": {
                "available": {"type": "boolean"},
                "events": {"type": "array", "items": {"type": "object", "required": ["kind", "time"]}},
            },
        },
        "notes": {"type": "array", "items": {"type": "string"}},
    },
}
