"""The served OpenAPI document describes the ARM route table exactly: no route left out, none invented."""

from __future__ import annotations

from scaleset.api.app import ROUTES, _match
from scaleset.api.openapi import document

SAMPLES = {
    "subscriptionId": "sub",
    "resourceGroupName": "group",
    "vmScaleSetName": "set",
    "instanceId": "0",
    "location": "westus",
    "operationId": "op",
}


def test_every_documented_operation_is_an_arm_route() -> None:
    for path, item in document()["paths"].items():
        found = _match(path.format(**SAMPLES))
        assert found is not None, path
        route, _ = found
        assert route.kind == "arm", path
        for method in set(item) - {"parameters"}:
            assert method.upper() in route.methods, f"{method.upper()} {path}"


def test_every_arm_route_is_documented() -> None:
    documented: set[tuple[str, str]] = set()
    for path, item in document()["paths"].items():
        found = _match(path.format(**SAMPLES))
        assert found is not None, path
        documented |= {(found[0].pattern.pattern, method.upper()) for method in set(item) - {"parameters"}}
    routes = {(route.pattern.pattern, method) for route in ROUTES if route.kind == "arm" for method in route.methods}
    assert routes - documented == set()


def test_every_operation_states_the_error_envelope_and_needs_a_token() -> None:
    doc = document()
    assert doc["security"] == [{"bearer": []}]
    assert doc["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    envelope = {"$ref": "#/components/schemas/ErrorResponse"}
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            assert operation["parameters"][0] == {"$ref": "#/components/parameters/ApiVersion"}
            errors = {code: r for code, r in operation["responses"].items() if int(code) >= 400}
            assert {"400", "401"} <= set(errors), f"{method} {path}"
            for code, response in errors.items():
                if method == "head":  # HEAD answers carry no body
                    continue
                assert response["content"]["application/json"]["schema"] == envelope, f"{method} {path} {code}"
