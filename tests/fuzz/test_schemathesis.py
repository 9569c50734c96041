"""Schemathesis against a live ``scaleset serve``, driven by the OpenAPI document the server publishes.

Every documented operation is fuzzed over HTTPS, on loopback, with a bearer token the server issued, by
schemathesis' three phases: the explicit examples, its deterministic coverage cases (boundary and type-violating
values of every parameter and body field, a missing token, other methods, other media types), and
``MAX_EXAMPLES`` Hypothesis examples (derandomised, no example database) in both generation modes. Every answer
must:

* never be a server error (status >= 500);
* carry, when it is an error, ARM's envelope: a JSON object ``{"error": {"code": str, "message": str}}``;
* use a status code, content type and body shape that the document states for that operation.

Random names mostly meet 404s, so the fuzzed copy of the document gives the path parameters examples that exist
(the emulated subscription, a resource group, two scale sets and their instances), and Hypothesis' path
parameters are in a third of the examples all replaced by existing names, and in another third each one
independently: the fuzzer reaches the handlers behind the lookups. Each operation starts with those resources as
first created, whatever the previous operation deleted or resized.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from scaleset.api.openapi import document
from scaleset.api.serve import SUBSCRIPTION

MAX_EXAMPLES = int(os.environ.get("SCALESET_FUZZ_EXAMPLES", "20"))  # per operation; raise it for a deeper local run
GROUP = "fuzz"
LOCATION = "westus"
SCALE_SETS = ("fuzz-manual", "fuzz-rolling")
INSTANCES = ("0", "1", "2")
CAPACITY = 3
API = "api-version=2024-11-01"


def _api_conftest() -> ModuleType:
    """tests/api/conftest.py, for its ``start_server``/``stop_server``: the fuzz server starts exactly as theirs."""
    path = Path(__file__).resolve().parents[1] / "api" / "conftest.py"
    for module in list(sys.modules.values()):
        if getattr(module, "__file__", None) == str(path):
            return module
    spec = importlib.util.spec_from_file_location("scaleset_fuzz_api_conftest", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


API_CONFTEST = _api_conftest()


def _scale_set_body(name: str) -> dict[str, Any]:
    mode = "Rolling" if "rolling" in name else "Manual"
    body: dict[str, Any] = API_CONFTEST.scale_set_body(capacity=CAPACITY, mode=mode)
    body["location"] = LOCATION
    return body


# Values random text rarely hits, each of which once answered 500: digits to str.isdigit() that int() refuses or
# that are not ASCII, and more digits than int() converts.
ODD: dict[str, tuple[str, ...]] = {"instanceId": ("\u00b2", "\u0661", "9" * 5000, "-1")}


def _fuzzed_document() -> dict[str, Any]:
    """The served document, with path parameter examples naming the resources below: schemathesis' coverage phase
    builds its many body and query variants on the examples, and they should reach the handlers, not stop at 404."""
    doc = document()
    examples = {
        "SubscriptionId": SUBSCRIPTION,
        "ResourceGroupName": GROUP,
        "VmScaleSetName": SCALE_SETS[0],
        "InstanceId": "0",
        "Location": LOCATION,
    }
    for name, value in examples.items():
        doc["components"]["parameters"][name]["example"] = value
    # Several examples for instanceId: every one of them is tried, with every other parameter existing.
    instance = doc["components"]["parameters"]["InstanceId"]
    del instance["example"]
    instance["examples"] = {f"e{i}": {"value": v} for i, v in enumerate((INSTANCES[0], *ODD["instanceId"]))}
    # Action bodies: existing instances, all of them, and each odd id.
    bodies = [[INSTANCES[0]], ["*"], *([odd] for odd in ODD["instanceId"])]
    for item in doc["paths"].values():
        content = item.get("post", {}).get("requestBody", {}).get("content", {}).get("application/json")
        if content is not None:
            content["examples"] = {f"e{i}": {"value": {"instanceIds": ids}} for i, ids in enumerate(bodies)}
    schemas = doc["components"]["schemas"]
    schemas["VirtualMachineScaleSet"]["example"] = _scale_set_body(SCALE_SETS[0])
    schemas["VirtualMachineScaleSetUpdate"]["example"] = {"sku": {"capacity": CAPACITY}, "tags": {"fuzz": "yes"}}
    return doc


schema = schemathesis.openapi.from_dict(_fuzzed_document())
OPERATIONS = {
    f"{method.upper()} {path}"
    for path, item in document()["paths"].items()
    for method in item
    if method != "parameters"
}

# Names that exist on the server: ``Target.ensure`` creates them before each operation and fills in the operation
# ids.
KNOWN: dict[str, tuple[str, ...]] = {
    "subscriptionId": (SUBSCRIPTION,),
    "resourceGroupName": (GROUP,),
    "vmScaleSetName": SCALE_SETS,
    "instanceId": INSTANCES,
    "location": (LOCATION,),
    "operationId": ("unknown-operation",),
}


@schema.hook
def flatmap_path_parameters(context: schemathesis.HookContext, path_parameters: dict[str, Any] | None) -> Any:
    """The generated parameters, or all of them replaced by existing names, or each one independently (by an
    existing name or an odd value)."""
    keys = [key for key in path_parameters or {} if key in KNOWN]
    if not keys or path_parameters is None:
        return st.just(path_parameters)
    known = st.fixed_dictionaries({key: st.sampled_from(KNOWN[key]) for key in keys})
    mixed = st.fixed_dictionaries(
        {key: st.sampled_from((path_parameters[key], *KNOWN[key], *ODD.get(key, ()))) for key in keys},
    )
    return st.one_of(known, st.just({}), mixed).map(lambda chosen: {**path_parameters, **chosen})


@schema.hook
def flatmap_body(context: schemathesis.HookContext, body: Any) -> Any:
    """Objects as generated, or with the fields that random data rarely gets right set to values that fit: the
    scale sets' ``location`` (immutable) and ``instanceIds`` naming existing instances (or odd ones)."""
    if not isinstance(body, dict):
        return st.just(body)
    fitting: dict[str, Any] = {"location": st.just(LOCATION)} if "location" in body else {}
    if context.operation is not None and context.operation.method.upper() == "POST":
        fitting["instanceIds"] = st.one_of(
            st.just(["*"]),
            st.lists(st.sampled_from(KNOWN["instanceId"]), min_size=1, max_size=3),
            st.lists(st.sampled_from(ODD["instanceId"]), min_size=1, max_size=1),
        )
    if not fitting:
        return st.just(body)
    return st.one_of(st.just(body), st.fixed_dictionaries(fitting).map(lambda chosen: {**body, **chosen}))


STATUSES: Counter[tuple[str, int]] = Counter()


@schema.hook
def after_call(context: schemathesis.HookContext, case: schemathesis.Case, response: schemathesis.Response) -> None:
    STATUSES[(case.operation.label, response.status_code)] += 1


def arm_error_envelope(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> None:
    """Every error answer (but HEAD's, which has no body) is ARM's JSON envelope with a string code and message."""
    if response.status_code < 400 or case.method.upper() == "HEAD":
        return
    where = f"{case.method} {case.formatted_path} answered {response.status_code}"
    try:
        body = json.loads(response.content)
    except ValueError as exc:
        raise AssertionError(f"{where} with a body that is not JSON: {response.content[:200]!r}") from exc
    error = body.get("error") if isinstance(body, dict) else None
    assert isinstance(error, dict), f"{where} without an 'error' object: {body!r}"
    assert isinstance(error.get("code"), str) and error["code"], f"{where} without a string error.code: {body!r}"
    assert isinstance(error.get("message"), str), f"{where} without a string error.message: {body!r}"
    assert response.headers.get("content-type", [""])[0].startswith("application/json"), f"{where}: not JSON"


CHECKS = [
    not_a_server_error,
    arm_error_envelope,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


# ---------------------------------------------------------------------- the live server and its resources


class Target:
    """The fuzzed server: a session with a token, and the resources the known names refer to."""

    def __init__(self, base: str, session: requests.Session) -> None:
        self.base = base
        self.session = session
        self.operations: dict[str, list[str]] = {}  # by scale set: the operations that created and changed it

    def url(self, path: str) -> str:
        return f"{self.base}{path}?{API}"

    def ensure(self) -> None:
        """The group, and both scale sets as first created (instances 0-2, capacity 3): a scale set that the last
        operation deleted, resized or renumbered is deleted (if it is not already) and created again."""
        group = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{GROUP}"
        answer = self.session.put(self.url(group), json={"location": LOCATION}, timeout=30)
        if answer.status_code == 409:  # the last operation deleted it: wait until it is gone
            self._wait_gone(group)
            answer = self.session.put(self.url(group), json={"location": LOCATION}, timeout=30)
        assert answer.status_code in (200, 201), answer.text
        for name in SCALE_SETS:
            path = f"{group}/providers/Microsoft.Compute/virtualMachineScaleSets/{name}"
            if self._as_created(path):
                continue
            self.session.delete(self.url(path), timeout=30)
            self._wait_gone(path)
            created = self.session.put(self.url(path), json=_scale_set_body(name), timeout=30)
            assert created.status_code == 201, created.text
            self.operations[name] = [_operation_id(created)]
            if "rolling" in name:  # an image change: rollingUpgrades/latest has something to show
                changed = self.session.patch(self.url(path), json=API_CONFTEST.image_patch("1.0.1"), timeout=30)
                assert changed.status_code == 200, changed.text
                self.operations[name].append(_operation_id(changed))
        KNOWN["operationId"] = tuple(op for ops in self.operations.values() for op in ops)

    def _as_created(self, path: str) -> bool:
        current = self.session.get(self.url(path), timeout=30)
        if not current.ok or current.json()["properties"].get("provisioningState") == "Deleting":
            return False
        if current.json()["sku"].get("capacity") != CAPACITY:
            return False
        vms = self.session.get(self.url(f"{path}/virtualMachines"), timeout=30)
        if not vms.ok:
            return False
        alive = {vm["instanceId"] for vm in vms.json()["value"] if vm["properties"]["provisioningState"] != "Deleting"}
        return alive == set(INSTANCES)

    def _wait_gone(self, path: str) -> None:
        deadline = time.monotonic() + 30
        while self.session.get(self.url(path), timeout=30).status_code != 404:
            assert time.monotonic() < deadline, f"{path} still there 30 s after its deletion"
            time.sleep(0.02)


def _operation_id(answer: requests.Response) -> str:
    return answer.headers["Azure-AsyncOperation"].split("?")[0].rsplit("/", 1)[-1]


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    process, server = API_CONFTEST.start_server(tmp_path_factory.mktemp("fuzz"))
    try:
        session = requests.Session()
        session.trust_env = False  # loopback only: no proxy, no CA bundle from the environment
        session.verify = str(server.ca)
        token = session.post(
            f"{server.base}/{server.tenant}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": server.client_id,
                "client_secret": server.secret,
                "scope": "https://management.azure.com/.default",
            },
            timeout=10,
        )
        token.raise_for_status()
        session.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        yield Target(server.base, session)
    finally:
        assert API_CONFTEST.stop_server(process) == 0, (server.data_dir / "serve.log").read_text()[-4000:]


@pytest.fixture
def fuzz_target(target: Target) -> Target:
    target.ensure()
    return target


def test_the_document_is_served_without_a_token(target: Target) -> None:
    """``GET /_scaleset/openapi.json`` needs no token, serves the document fuzzed here and names the server."""
    answer = requests.get(f"{target.base}/_scaleset/openapi.json", verify=target.session.verify, timeout=10)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    served = answer.json()
    assert served.pop("servers") == [{"url": target.base}]
    assert served == document()
    assert len(list(schemathesis.openapi.from_dict(served).get_all_operations())) == len(OPERATIONS)


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    # The fixture runs once per operation, on purpose; examples that hit the server are slow by Hypothesis' measure.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)
def test_fuzz(case: schemathesis.Case, fuzz_target: Target) -> None:
    case.call_and_validate(
        base_url=fuzz_target.base,
        session=fuzz_target.session,
        verify=fuzz_target.session.verify,
        checks=CHECKS,
        timeout=30,
    )


def test_fuzzing_reached_the_handlers() -> None:
    """The run above got past the lookups: most operations had a success answer, not only 404s."""
    if not STATUSES:
        pytest.skip("runs after test_fuzz, in the same session")
    assert {label for label, _ in STATUSES} == OPERATIONS
    succeeded = {label for label, status in STATUSES if status < 300}
    assert len(succeeded) >= 0.8 * len(OPERATIONS), sorted(OPERATIONS - succeeded)
