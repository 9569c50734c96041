"""``scaleset image publish | list | show | delete`` against a live server: shapes, formats, errors, exit codes."""

from __future__ import annotations

from tests.cli.conftest import Run

URN = "imgcli:web:stable:1.2.0"


def test_publish_show_list_delete(scaleset: Run) -> None:
    published = scaleset(
        "image", "publish", "--publisher", "imgcli", "--offer", "web", "--sku", "stable", "--version", "1.2.0",
        "--command", "{python} -m myapp --port {port} --greeting 'hello world'",
        "--env", "ZONE={zone}", "DATA={data_dir}", "--env", "PLAIN=x=y",
        "--cwd", "{os_dir}", "--description", "my app",
    )  # fmt: skip
    assert published.code == 0, published.err
    answer = published.json()
    assert answer.pop("automaticOSUpgrades", []) == [] and published.err == ""  # no scale set tracks it
    assert answer == {
        "publisher": "imgcli",
        "offer": "web",
        "sku": "stable",
        "version": "1.2.0",
        "gallery": None,
        "command": ["{python}", "-m", "myapp", "--port", "{port}", "--greeting", "hello world"],
        "env": {"ZONE": "{zone}", "DATA": "{data_dir}", "PLAIN": "x=y"},
        "cwd": "{os_dir}",
        "excludeFromLatest": False,
        "description": "my app",
        "builtIn": False,
    }

    shown = scaleset("image", "show", "--urn", URN.upper(), "--query", "[command[0], env.ZONE, builtIn]")
    assert shown.code == 0 and shown.json() == ["{python}", "{zone}", False]

    replaced = scaleset(
        "image", "publish", "--urn", URN, "--arg", "{python}", "--arg=-m", "--arg", "other",
        "--exclude-from-latest", "-o", "none",
    )  # fmt: skip
    assert replaced.code == 0 and replaced.out == ""
    shown = scaleset(
        "image", "show", "--publisher", "IMGCLI", "--offer", "web", "--sku", "stable", "--version", "1.2.0"
    )
    assert shown.q("[command, excludeFromLatest, description]") == [["{python}", "-m", "other"], True, None]

    listed = scaleset("image", "list", "--publisher", "imgcli")
    assert listed.code == 0 and listed.q("[].[version, builtIn]") == [["1.2.0", False]]
    table = scaleset("image", "list", "--offer", "demo", "-o", "table")
    assert table.code == 0
    header = table.out.splitlines()[0].split()
    assert header == ["Publisher", "Offer", "Sku", "Version", "BuiltIn", "ExcludeFromLatest", "Description"]
    assert sum(line.split()[:4] == ["scaleset", "demo", "app", "3.1.0"] for line in table.out.splitlines()) == 1

    deleted = scaleset("image", "delete", "--urn", URN)
    assert deleted.code == 0 and deleted.out == ""
    missing = scaleset("image", "show", "--urn", URN)
    assert missing.code == 3 and missing.err.startswith("(NotFound) Image version 'imgcli:web:stable:1.2.0'")
    assert scaleset("image", "delete", "--urn", URN).code == 3


def test_builtin_versions_are_listed_and_protected(scaleset: Run) -> None:
    listed = scaleset("image", "list", "--query", "[?builtIn].version")
    assert listed.code == 0 and listed.json() == ["1.0.0", "1.1.0", "3.0.0", "3.1.0", "3.2.0", "3.3.0"]
    refused = scaleset("image", "delete", "--urn", "scaleset:demo:app:1.0.0")
    assert refused.code == 1 and refused.err.startswith("(Conflict) ") and "built in" in refused.err
    refused = scaleset("image", "publish", "--urn", "scaleset:demo:app:1.1.0", "--command", "true")
    assert refused.code == 1 and refused.err.startswith("(Conflict) ")


def test_server_side_validation_is_one_line_and_exit_1(scaleset: Run) -> None:
    bad = scaleset("image", "publish", "--urn", "imgcli:web:stable:1.0.0", "--command", "run {host}")
    assert bad.code == 1
    assert bad.err.startswith("(InvalidParameter) Invalid image version: unknown placeholder '{host}'")
    assert len(bad.err.strip().splitlines()) == 1
    bad = scaleset("image", "publish", "--urn", "imgcli:web:stable:v1", "--command", "run")
    assert bad.code == 1 and "is not dotted numbers" in bad.err


def test_usage_errors_are_exit_2_before_any_request(scaleset: Run) -> None:
    cases = [
        ("image", "publish", "--urn", "a:b:c", "--command", "run"),  # three parts
        ("image", "publish", "--urn", "a:b:c:1", "--publisher", "a", "--command", "run"),  # both ways
        ("image", "publish", "--publisher", "a", "--offer", "b", "--command", "run"),  # missing sku, version
        ("image", "publish", "--urn", "a:b:c:1"),  # no command
        ("image", "publish", "--urn", "a:b:c:1", "--command", "run 'unbalanced"),
        ("image", "publish", "--urn", "a:b:c:1", "--command", "run", "--env", "NOVALUE"),
        ("image", "show"),
    ]
    for argv in cases:
        result = scaleset(*argv)
        assert result.code == 2, (argv, result.err)
        assert result.err.strip(), argv
    both = scaleset("image", "publish", "--urn", "a:b:c:1", "--command", "run", "--arg", "x")
    assert both.code == 2 and "not allowed with argument" in both.err
