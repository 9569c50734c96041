"""The image catalogue: which versions ``latest`` may pick, exact lookups, gallery ids, placeholders, validation."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from scaleset.domain.catalogue import (
    BUILTIN_IMAGES,
    DEMO_GALLERY,
    PLACEHOLDERS,
    ImageVersion,
    gallery_conflict,
    lookup,
    normalise_gallery_id,
    render_command,
    versions_for,
)
from scaleset.domain.images import resolve_version
from scaleset.domain.resources import ImageReference

GALLERY = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/galleries/g/images/web"


def image(version: str, **fields: Any) -> ImageVersion:
    data: dict[str, Any] = {
        "publisher": "Contoso",
        "offer": "app",
        "sku": "stable",
        "version": version,
        "command": ["{python}", "-m", "web", "--port={port}"],
    }
    return ImageVersion.model_validate(data | fields)


def ref(**fields: Any) -> ImageReference:
    return ImageReference.model_validate(fields)


CONTOSO = [
    image("1.0.0", gallery=GALLERY),
    image("1.10.0"),
    image("1.9.0"),
    image("2.0.0", excludeFromLatest=True),
    image("3.0.0", offer="other"),
]


# ---------------------------------------------------------------------- versions_for / lookup


def test_latest_candidates_match_publisher_offer_sku_without_case_and_skip_excluded_versions() -> None:
    found = versions_for(CONTOSO, ref(publisher="CONTOSO", offer="App", sku="STABLE", version="latest"))
    assert found == ["1.0.0", "1.9.0", "1.10.0"]
    assert resolve_version(ref(publisher="contoso", offer="app", sku="stable", version="latest"), found) == "1.10.0"


def test_nothing_matches_an_incomplete_or_missing_reference() -> None:
    assert versions_for(CONTOSO, None) == []
    assert versions_for(CONTOSO, ref(publisher="Contoso", offer="app")) == []
    assert versions_for(CONTOSO, ref(publisher="Contoso", offer="app", sku="beta")) == []
    assert lookup(CONTOSO, None, "1.0.0") is None


@pytest.mark.parametrize(
    "image_id",
    [
        GALLERY,
        GALLERY.upper(),
        GALLERY + "/",
        GALLERY + "/versions/1.0.0",
        GALLERY.lower() + "/Versions/2.0.0",
        GALLERY + "/versions/latest",
    ],
)
def test_a_gallery_id_with_or_without_a_version_finds_the_image(image_id: str) -> None:
    # the gallery image stands for Contoso:app:stable, so versions published without naming it are found too
    assert versions_for(CONTOSO, ref(id=image_id)) == ["1.0.0", "1.9.0", "1.10.0"]
    assert lookup(CONTOSO, ref(id=image_id), "2.0.0") == CONTOSO[3]


def test_an_unknown_gallery_id_finds_nothing() -> None:
    other = GALLERY.replace("/images/web", "/images/api")
    assert versions_for(CONTOSO, ref(id=other)) == []
    assert lookup(CONTOSO, ref(id=other), "1.0.0") is None


def test_lookup_finds_exact_versions_excluded_ones_included() -> None:
    stable = ref(publisher="contoso", offer="APP", sku="stable", version="2.0.0")
    assert lookup(CONTOSO, stable, "2.0.0") == CONTOSO[3]
    assert lookup(CONTOSO, stable, "1.9.0") == CONTOSO[2]
    assert lookup(CONTOSO, stable, "3.0.0") is None  # another offer
    assert lookup(CONTOSO, stable, "9.9.9") is None


def test_normalised_gallery_ids() -> None:
    assert normalise_gallery_id(GALLERY + "/versions/1.2.3/") == GALLERY.lower()
    assert normalise_gallery_id(" " + GALLERY.upper() + "/ ") == GALLERY.lower()


def test_a_gallery_image_holds_one_publisher_offer_sku() -> None:
    elsewhere = image("4.0.0", offer="other", gallery=GALLERY.upper())
    assert "already holds the versions of Contoso:app:stable" in (gallery_conflict(CONTOSO, elsewhere) or "")
    moved = image("4.0.0", gallery=GALLERY.replace("/images/web", "/images/api"))
    assert "publish with that gallery or without one" in (gallery_conflict(CONTOSO, moved) or "")
    assert gallery_conflict(CONTOSO, image("4.0.0")) is None
    assert gallery_conflict(CONTOSO, image("4.0.0", gallery=GALLERY)) is None
    assert gallery_conflict(CONTOSO, image("1.0.0", offer="other", gallery=GALLERY)) is not None


# ---------------------------------------------------------------------- built-in demo versions


def test_builtin_demo_versions() -> None:
    demo = ref(publisher="scaleset", offer="demo", sku="app", version="latest")
    assert versions_for(BUILTIN_IMAGES, demo) == ["1.0.0", "1.1.0"]
    assert versions_for(BUILTIN_IMAGES, ref(id=DEMO_GALLERY)) == ["1.0.0", "1.1.0"]
    assert versions_for(BUILTIN_IMAGES, ref(id=DEMO_GALLERY + "/versions/3.0.0")) == ["1.0.0", "1.1.0"]
    modes = {}
    for version in ("1.0.0", "1.1.0", "3.0.0", "3.1.0", "3.2.0", "3.3.0"):
        found = lookup(BUILTIN_IMAGES, demo, version)
        assert found is not None and found.description, version
        assert found.excludeFromLatest == version.startswith("3."), version
        argv = found.command
        modes[version] = argv[argv.index("--mode") + 1] if "--mode" in argv else "healthy"
    assert modes == {
        "1.0.0": "healthy",
        "1.1.0": "healthy",
        "3.0.0": "never",
        "3.1.0": "crash",
        "3.2.0": "slow",
        "3.3.0": "unknown",
    }
    assert len({i.key for i in BUILTIN_IMAGES}) == len(BUILTIN_IMAGES)


def test_a_published_version_of_the_demo_is_reachable_through_the_demo_gallery() -> None:
    newer = BUILTIN_IMAGES[0].model_copy(update={"version": "2.0.0", "gallery": None})
    assert versions_for([*BUILTIN_IMAGES, newer], ref(id=DEMO_GALLERY)) == ["1.0.0", "1.1.0", "2.0.0"]


# ---------------------------------------------------------------------- rendering


def test_render_fills_every_placeholder_in_command_env_and_cwd() -> None:
    template = image(
        "1.2.3",
        command=["{python}", "app.py", "--port", "{port}", "--id={instance_id}", "{zone}", "{{literal}}"],
        env={"DATA": "{data_dir}/db", "VERSION": "v{version}", "PLAIN": "x"},
        cwd="{os_dir}/work",
    )
    argv, env, cwd = render_command(
        template, python="/usr/bin/python3", port=8080, instance_id=7, zone=None, data_dir="/d", os_dir="/o"
    )
    assert argv == ["/usr/bin/python3", "app.py", "--port", "8080", "--id=7", "", "{literal}"]
    assert env == {"DATA": "/d/db", "VERSION": "v1.2.3", "PLAIN": "x"}
    assert cwd == "/o/work"


def test_render_without_cwd_and_with_an_explicit_version() -> None:
    argv, env, cwd = render_command(image("1.0.0", command=["run", "{version}"]), version="9")
    assert (argv, env, cwd) == (["run", "9"], {}, None)


def test_render_refuses_missing_and_unknown_values() -> None:
    with pytest.raises(ValueError, match=r"uses \{port\} but no value"):
        render_command(image("1.0.0"), python="py")
    with pytest.raises(ValueError, match="not placeholders: host"):
        render_command(image("1.0.0"), python="py", port=1, host="x")


def test_every_builtin_renders_with_every_placeholder() -> None:
    values = {name: f"<{name}>" for name in PLACEHOLDERS if name != "version"}
    for builtin in BUILTIN_IMAGES:
        argv, env, _ = render_command(builtin, **values)
        assert argv[:3] == ["<python>", "-m", "scaleset.demo.app"]
        assert "--version" in argv and argv[argv.index("--version") + 1] == builtin.version
        assert not any("{" in part for part in [*argv, *env.values()])


# ---------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"version": "1.0.x"}, "is not dotted numbers"),
        ({"version": "latest"}, "is not dotted numbers"),
        ({"version": "1.2.3.4.5"}, "is not dotted numbers"),
        ({"version": ""}, "is not dotted numbers"),
        ({"command": []}, "command must not be empty"),
        ({"command": [" "]}, "command must not be empty"),
        ({"command": ["run", "{host}"]}, r"unknown placeholder '\{host\}'"),
        ({"command": ["run", "{}"]}, r"unknown placeholder '\{\}'"),
        ({"command": ["run", "{0}"]}, r"unknown placeholder '\{0\}'"),
        ({"command": ["run", "{port.real}"]}, r"unknown placeholder '\{port.real\}'"),
        ({"command": ["run", "{port"]}, "malformed placeholder"),
        ({"command": ["run", "port}"]}, "malformed placeholder"),
        ({"command": ["run", "{port!r}"]}, "takes no conversion or format spec"),
        ({"command": ["run", "{port:>5}"]}, "takes no conversion or format spec"),
        ({"env": {"A": "{nope}"}}, r"unknown placeholder '\{nope\}'"),
        ({"env": {"1A": "x"}}, "environment variable name '1A' is not valid"),
        ({"env": {"A=B": "x"}}, "is not valid"),
        ({"cwd": "{home}"}, r"unknown placeholder '\{home\}'"),
        ({"cwd": ""}, "cwd must not be empty"),
        ({"command": ["run\0"]}, "NUL"),
        ({"publisher": "con:toso"}, "is not a valid name"),
        ({"sku": "a/b"}, "is not a valid name"),
        ({"offer": ""}, "is not a valid name"),
        ({"gallery": "/subscriptions/s/images/x"}, "is not a gallery image id"),
        ({"gallery": GALLERY + "/versions/1.0.0"}, "is not a gallery image id"),
        ({"colour": "blue"}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_image_versions_are_refused_with_a_clear_message(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        image(fields.pop("version", "1.0.0"), **fields)


def test_valid_shapes() -> None:
    assert image("1").version == "1"
    assert image("22.04.202408010").version == "22.04.202408010"
    assert image("1.0.0", gallery=GALLERY.lower() + "/").gallery == GALLERY.lower()
    every = " ".join(f"{{{name}}}" for name in PLACEHOLDERS)
    assert image("1.0.0", command=["sh", "-c", every + " {{braces}}"]).command[2].startswith("{python}")
    assert image("1.0.0").key == "contoso:app:stable:1.0.0"
    assert image("1.0.0").urn == "Contoso:app:stable:1.0.0"
