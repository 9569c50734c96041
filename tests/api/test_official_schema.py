"""The guard every API test runs under (``official_schema`` in conftest) checks what it claims to check."""

from __future__ import annotations

import pytest
from tests.api.conftest import NO_SCHEMA, Recorder, Seen, arm_schema, schema_problems

pytestmark = pytest.mark.skipif(arm_schema is None, reason=NO_SCHEMA)

VMSS = "https://127.0.0.1/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachineScaleSets/web"
OPERATION = "https://127.0.0.1/subscriptions/s/providers/Microsoft.Compute/locations/westus/operations/op"


def test_the_guard_reports_what_the_specification_forbids() -> None:
    assert schema_problems(Seen("GET", VMSS, 200, {"properties": {"upgradePolicy": {"mode": "Sideways"}}}))
    assert schema_problems(Seen("GET", VMSS, 201, {}))  # a status the operation does not declare
    assert schema_problems(Seen("GET", VMSS, 404, {"message": "not in the envelope"}))
    assert schema_problems(Seen("GET", VMSS + "/noSuchThing", 200, {}))  # answered a route the spec lacks
    assert schema_problems(Seen("DELETE", VMSS + "/instanceView", 405, {"oops": 1}))
    assert schema_problems(Seen("GET", OPERATION, 200, {"name": "op", "status": "Done", "startTime": "t"}))
    failed = {"name": "op", "status": "Failed", "startTime": "t", "error": {"message": "no code"}}
    assert schema_problems(Seen("GET", OPERATION, 200, failed))


def test_the_guard_accepts_arm_shapes_and_ignores_other_providers() -> None:
    assert schema_problems(Seen("GET", VMSS, 404, {"error": {"code": "ResourceNotFound", "message": "m"}})) == []
    assert schema_problems(Seen("DELETE", VMSS, 202, None)) == []
    done = {"name": "op", "status": "Succeeded", "startTime": "t", "endTime": "t"}
    assert schema_problems(Seen("GET", OPERATION, 200, done)) == []
    assert schema_problems(Seen("GET", "https://127.0.0.1/subscriptions/s/resourceGroups/g", 200, [])) == []


def test_a_server_error_is_always_a_problem() -> None:
    recorder = Recorder([Seen("GET", "https://127.0.0.1/subscriptions", 500, {"error": {"code": "x", "message": "y"}})])
    assert recorder.problems()
