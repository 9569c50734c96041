"""``scaleset extension publish | list | show | delete``: argument handling and requests without a server (a fake
session), then against a live server: the round trip, server-side validation, not found, and a publish that makes a
scale set with ``enableAutomaticUpgrade`` roll its extension forward.

Each live test uses its own extension publisher, so a publish reaches only that test's scale sets.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from tests.api.conftest import Server, scale_set_body
from tests.cli.conftest import LiveServer, Result, Run

from scaleset.cli import extensions, runner
from scaleset.cli.connect import Session
from scaleset.cli.errors import UsageError
from scaleset.main import build_parser, main

NAMES = ("--publisher", "ExtCli.Tools", "--type", "Agent", "--version", "1.2")

# ---------------------------------------------------------------------- without a server


def _parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


@dataclass
class FakeSession:
    """Records ``admin`` requests and answers each with the next canned answer."""

    answers: list[Any] = field(default_factory=list)
    calls: list[tuple[str, str, Any]] = field(default_factory=list)

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        self.calls.append((method, path, body))
        return self.answers.pop(0) if self.answers else None


def _call(handler: Any, session: FakeSession, *argv: str) -> Any:
    return handler(cast(Session, session), _parse(*argv))


def _usage(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """A usage error (exit 2, one line) from parsing alone: no server is looked for, no request is made."""
    capsys.readouterr()
    assert main(list(argv)) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1, captured.err
    return captured.err


def test_the_verbs_bind_their_handlers_and_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[Any] = []
    monkeypatch.setattr(runner, "execute", lambda handler, args: ran.append(handler) or 0)
    for verb, handler, table in (
        ("publish", extensions.publish, None),
        ("list", extensions.list_extensions, extensions.table),
        ("show", extensions.show, extensions.table),
        ("delete", extensions.delete, None),
    ):
        args = _parse("extension", verb, *([] if verb == "list" else NAMES))
        assert args.table is table
        assert args.run(args) == 0 and ran.pop() is handler
    args = _parse("extension", "show", *NAMES)
    assert (args.publisher, args.type, args.version) == ("ExtCli.Tools", "Agent", "1.2")
    args = _parse("extension", "list")
    assert (args.publisher, args.type) == (None, None)
    args = _parse("extension", "publish", *NAMES, "--description", "fixes", "-o", "table", "--query", "version")
    assert (args.description, args.output) == ("fixes", "table") and args.query is not None
    assert _parse("extension", "publish", *NAMES).description is None


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (("extension", "publish"), "the following arguments are required: --publisher, --type, --version"),
        (("extension", "show", "--publisher", "p", "--type", "t"), "the following arguments are required: --version"),
        (("extension", "delete", "--type", "t", "--version", "1.0"), "required: --publisher"),
        (("extension", "publish", "--publisher", " ", "--type", "t", "--version", "1.0"), "--publisher: must not be"),
        (("extension", "show", "--publisher", "p", "--type", "", "--version", "1.0"), "argument --type: must not be"),
        (("extension", "list", "--version", "1.0"), "unrecognized arguments: --version 1.0"),
        (("extension", "list", "--description", "x"), "unrecognized arguments: --description x"),
        (("extension", "show", *NAMES, "--description", "x"), "unrecognized arguments: --description x"),
        (("extension", "publish", *NAMES, "-o", "xml"), "argument -o/--output: invalid choice"),
        (("extension", "upgrade"), "invalid choice: 'upgrade'"),
        (("extension",), "the following arguments are required: COMMAND"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2_without_a_server(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
    argv: tuple[str, ...],
    expected: str,
) -> None:
    monkeypatch.setenv("SCALESET_DATA_DIR", str(tmp_path / "no-server"))  # a server lookup would fail otherwise
    assert expected in _usage(capsys, *argv)


def test_without_a_server_a_valid_command_is_one_line_and_exit_1(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv("SCALESET_DATA_DIR", str(tmp_path / "no-server"))
    capsys.readouterr()
    assert main(["extension", "show", *NAMES]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("(ServerNotFound) ") and captured.err.count("\n") == 1


def test_cloud_azure_is_refused_before_any_request(capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert (
        main(["extension", "list", "--cloud", "azure", "--subscription", "00000000-0000-0000-0000-000000000001"]) == 2
    )
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("(InvalidArgumentValue) ") and captured.err.count("\n") == 1


def test_requests_paths_and_bodies(capsys: pytest.CaptureFixture[str]) -> None:
    session = FakeSession(answers=[{"publisher": "ExtCli.Tools", "extensionUpgradesDue": 0}])
    answer = _call(extensions.publish, session, "extension", "publish", *NAMES)
    assert answer == {"publisher": "ExtCli.Tools", "extensionUpgradesDue": 0}
    assert session.calls == [("PUT", "/_scaleset/extensions/ExtCli.Tools/Agent/1.2", {})]
    assert capsys.readouterr().err == ""  # nothing due: no line

    session = FakeSession()
    _call(extensions.publish, session, "extension", "publish", *NAMES, "--description", "")
    assert session.calls[0][2] == {"description": ""}  # given, even empty: sent as given

    session = FakeSession()
    _call(extensions.show, session, "extension", "show", "--publisher", "a b/c", "--type", "t?x", "--version", "1.0")
    assert session.calls == [("GET", "/_scaleset/extensions/a%20b%2Fc/t%3Fx/1.0", None)]  # each name one segment

    session = FakeSession()
    assert _call(extensions.delete, session, "extension", "delete", *NAMES) is None  # delete prints nothing
    assert session.calls == [("DELETE", "/_scaleset/extensions/ExtCli.Tools/Agent/1.2", None)]


def test_publish_line_only_when_upgrades_are_due(capsys: pytest.CaptureFixture[str]) -> None:
    session = FakeSession(answers=[{"version": "1.2", "extensionUpgradesDue": 2}])
    answer = _call(extensions.publish, session, "extension", "publish", *NAMES)
    assert answer == {"version": "1.2", "extensionUpgradesDue": 2}  # stdout keeps the answer
    assert capsys.readouterr().err == "extension upgrades may start on 2 scale set(s)\n"
    assert extensions.upgrades_line({"extensionUpgradesDue": 1}) == "extension upgrades may start on 1 scale set(s)"
    for nothing in ({"extensionUpgradesDue": 0}, {"extensionUpgradesDue": None}, {"extensionUpgradesDue": True},
                    {"extensionUpgradesDue": "3"}, {"version": "1.2"}, None, []):  # fmt: skip
        assert extensions.upgrades_line(nothing) is None, nothing


def test_list_filters_without_case_and_the_table() -> None:
    listed = [
        {"publisher": "ExtCli.Tools", "type": "Agent", "version": "1.0", "description": ""},
        {"publisher": "extcli.tools", "type": "Other", "version": "2.0", "description": "x"},
        {"publisher": "Someone", "type": "agent", "version": "1.1", "description": ""},
    ]
    assert _call(extensions.list_extensions, FakeSession([{"value": listed}]), "extension", "list") == listed
    by_publisher = _call(
        extensions.list_extensions, FakeSession([{"value": listed}]), "extension", "list", "--publisher", "EXTCLI.tools"
    )
    assert [e["version"] for e in by_publisher] == ["1.0", "2.0"]
    both = _call(
        extensions.list_extensions,
        FakeSession([{"value": listed}]),
        "extension", "list", "--publisher", "extcli.tools", "--type", "AGENT",
    )  # fmt: skip
    assert [e["version"] for e in both] == ["1.0"]
    assert _call(extensions.list_extensions, FakeSession([None]), "extension", "list") == []

    rows = extensions.table(listed[:1])
    assert rows == [{"Publisher": "ExtCli.Tools", "Type": "Agent", "Version": "1.0", "Description": ""}]
    assert extensions.table(listed[1]) == [  # show: one object
        {"Publisher": "extcli.tools", "Type": "Other", "Version": "2.0", "Description": "x"}
    ]


def test_a_namespace_without_the_names_is_a_usage_error() -> None:
    args = argparse.Namespace(publisher="p", type=None, version="1.0", description=None)
    with pytest.raises(UsageError, match="needs --publisher, --type and --version"):
        extensions.publish(cast(Session, FakeSession()), args)


# ---------------------------------------------------------------------- against a live server


def _one_line(result: Result, code: int, prefix: str) -> None:
    assert result.code == code, (result.code, result.err)
    assert result.out == "" and result.err.startswith(prefix), result.err
    assert result.err.count("\n") == 1 and "Traceback" not in result.err, result.err


def test_publish_list_show_delete(scaleset: Run) -> None:
    names = ("--publisher", "ExtCli.RoundTrip", "--type", "Agent")
    published = scaleset("extension", "publish", *names, "--version", "1.2", "--description", "fixes")
    assert published.code == 0, published.err
    assert published.json() == {
        "publisher": "ExtCli.RoundTrip",
        "type": "Agent",
        "version": "1.2",
        "description": "fixes",
        "extensionUpgradesDue": 0,
    }
    assert published.err == ""  # no scale set has this extension
    again = scaleset("extension", "publish", *names, "--version", "1.10", "-o", "none")
    assert (again.code, again.out, again.err) == (0, "", "")

    shown = scaleset("extension", "show", "--publisher", "extcli.roundtrip", "--type", "AGENT", "--version", "1.2")
    assert shown.code == 0, shown.err
    assert shown.json() == {"publisher": "ExtCli.RoundTrip", "type": "Agent", "version": "1.2", "description": "fixes"}

    replaced = scaleset("extension", "publish", *names, "--version", "1.2", "--query", "description")
    assert replaced.code == 0 and replaced.json() == ""  # a replace without --description clears it

    listed = scaleset("extension", "list", "--publisher", "EXTCLI.ROUNDTRIP")
    assert listed.code == 0 and listed.q("[].version") == ["1.2", "1.10"]  # numeric order, not text order
    by_type = scaleset("extension", "list", "--type", "agent", "--query", "[?publisher=='ExtCli.RoundTrip'].version")
    assert by_type.json() == ["1.2", "1.10"]
    assert scaleset("extension", "list", "--publisher", "ExtCli.RoundTrip", "--type", "Other").json() == []
    table = scaleset("extension", "list", "--publisher", "ExtCli.RoundTrip", "-o", "table")
    assert table.code == 0
    lines = table.out.splitlines()
    assert lines[0].split() == ["Publisher", "Type", "Version", "Description"]
    assert [line.split()[:3] for line in lines[1:] if line.strip() and not set(line.strip()) <= set("-─ ")] == [
        ["ExtCli.RoundTrip", "Agent", "1.2"],
        ["ExtCli.RoundTrip", "Agent", "1.10"],
    ]
    tsv = scaleset("extension", "show", *names, "--version", "1.10", "-o", "tsv")
    assert tsv.code == 0 and tsv.out.split("\t")[:3] == ["", "ExtCli.RoundTrip", "Agent"]  # keys sorted: description

    deleted = scaleset("extension", "delete", *names, "--version", "1.2")
    assert (deleted.code, deleted.out, deleted.err) == (0, "", "")
    _one_line(
        scaleset("extension", "show", *names, "--version", "1.2"),
        3,
        "(NotFound) Extension version 'ExtCli.RoundTrip/Agent/1.2' was not found.",
    )
    _one_line(scaleset("extension", "delete", *names, "--version", "1.2"), 3, "(NotFound) ")
    assert scaleset("extension", "delete", *names, "--version", "1.10").code == 0
    assert scaleset("extension", "list", "--publisher", "ExtCli.RoundTrip").json() == []


def test_server_side_validation_is_one_line_and_exit_1(scaleset: Run) -> None:
    names = ("--publisher", "ExtCli.Invalid", "--type", "Agent")
    for version in ("latest", "1", "v1.0", "1.x"):
        bad = scaleset("extension", "publish", *names, "--version", version)
        _one_line(bad, 1, "(InvalidParameter) Invalid extension version: must be a dotted version of numbers")
    assert scaleset("extension", "list", "--publisher", "ExtCli.Invalid").json() == []
    _one_line(scaleset("extension", "show", *names, "--version", "9.9"), 3, "(NotFound) Extension version ")


def _until(scaleset: Run, argv: list[str], expression: str, wanted: object, timeout: float = 30.0) -> Result:
    """Run ``argv`` until it succeeds and its JSON output's ``expression`` is ``wanted``."""
    deadline = time.monotonic() + timeout
    while True:
        result = scaleset(*argv)
        if result.code == 0 and result.q(expression) == wanted:
            return result
        assert time.monotonic() < deadline, (result.code, result.out, result.err)
        time.sleep(0.1)


def test_publishing_a_newer_minor_version_rolls_the_extension_forward(scaleset: Run, live_server: LiveServer) -> None:
    """A scale set (made with the SDK) whose extension has ``enableAutomaticUpgrade`` on ``1.0``: ``extension
    publish --version 1.1`` makes the platform start an extension rolling upgrade; ``2.0`` does not."""
    assert scaleset("group", "create", "-n", "cli-extpub", "-l", "westus", "-o", "none").code == 0
    data_dir = live_server.data_dir
    port = int(live_server.base.rsplit(":", 1)[1])
    server = Server(
        live_server.base, port, data_dir, data_dir / "tls" / "ca.pem", (data_dir / "client-secret").read_text().strip()
    )
    agent = {
        "name": "agent",
        "properties": {
            "publisher": "ExtCli.Auto",
            "type": "Agent",
            "typeHandlerVersion": "1.0",
            "enableAutomaticUpgrade": True,
        },
    }
    body: Any = scale_set_body(capacity=2, mode="Manual")
    body["properties"]["virtualMachineProfile"]["extensionProfile"]["extensions"].append(agent)
    server.compute().virtual_machine_scale_sets.begin_create_or_update("cli-extpub", "web", body).result()
    target = ("-g", "cli-extpub", "-n", "web")
    agent_version = "extensions[?name=='agent'].typeHandlerVersion | [0]"
    for instance in ("0", "1"):
        view = scaleset("vmss", "get-instance-view", *target, "--instance-id", instance, "--query", agent_version)
        assert view.code == 0 and view.json() == "1.0", view.err
    _one_line(scaleset("vmss", "rolling-upgrade", "get-latest", *target), 3, "(")  # no upgrade yet

    published = scaleset("extension", "publish", "--publisher", "extcli.auto", "--type", "AGENT", "--version", "1.1")
    assert published.code == 0, published.err
    assert published.q("[publisher, type, version]") == ["extcli.auto", "AGENT", "1.1"]
    assert published.q("extensionUpgradesDue") == 1  # this scale set; the shared server may hold others, not due
    assert published.err == "extension upgrades may start on 1 scale set(s)\n"

    latest = _until(scaleset, ["vmss", "rolling-upgrade", "get-latest", *target], "runningStatus.code", "Completed")
    assert latest.q("progress.[successfulInstanceCount, failedInstanceCount]") == [2, 0]
    for instance in ("0", "1"):
        view = scaleset("vmss", "get-instance-view", *target, "--instance-id", instance, "--query", agent_version)
        assert view.code == 0 and view.json() == "1.1", (instance, view.out, view.err)
    model_version = "virtualMachineProfile.extensionProfile.extensions[?name=='agent'].typeHandlerVersion | [0]"
    model = scaleset("vmss", "show", *target, "--query", model_version)
    assert model.json() == "1.0"  # the model stays; the instances run the newer minor version

    # a new major version is not rolled out: the latest upgrade stays the one above
    started = latest.q("runningStatus.startTime")
    major = scaleset("extension", "publish", "--publisher", "ExtCli.Auto", "--type", "Agent", "--version", "2.0")
    assert major.code == 0, major.err
    assert major.q("extensionUpgradesDue") == 0 and major.err == ""
    time.sleep(0.5)
    again = scaleset("vmss", "rolling-upgrade", "get-latest", *target)
    assert again.q("runningStatus.[code, startTime]") == ["Completed", started]
    view = scaleset("vmss", "get-instance-view", *target, "--instance-id", "0", "--query", agent_version)
    assert view.json() == "1.1"
