"""The image catalogue's routes, under ``/_scaleset/images``, and the catalogue the engine and backends read.

The catalogue is the built-in demo versions (:data:`~scaleset.domain.catalogue.BUILTIN_IMAGES`) plus the versions
users publish, kept as store documents of kind ``"image"`` keyed ``publisher:offer:sku:version`` lower-cased.
Built-in versions can be neither replaced nor deleted (409).

* ``GET /_scaleset/images``: every version, each marked ``builtIn``.
* ``PUT /_scaleset/images/{publisher}/{offer}/{sku}/{version}``: publish (201 new, 200 replaced); the body holds
  ``command`` and optionally ``env``, ``cwd``, ``gallery``, ``excludeFromLatest``, ``description``.
* ``GET`` / ``DELETE`` of ``/_scaleset/images/{publisher}/{offer}/{sku}/{version}`` (404 when unknown).

A published version is visible to the next deploy at once: the engine's catalogue reads
:func:`catalogue_images`, which this module's writes keep current (it caches the published versions per store;
every write goes through :func:`publish` or :func:`unpublish`).
"""

from __future__ import annotations

import logging
import weakref
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from scaleset.api.http import ApiError, invalid, json_body, json_response
from scaleset.domain.catalogue import BUILTIN_IMAGES, ImageVersion, gallery_conflict, image_key
from scaleset.domain.images import version_key
from scaleset.store.base import Store

if TYPE_CHECKING:  # runtime.py imports this module for the catalogue
    from scaleset.api.runtime import Runtime

log = logging.getLogger("scaleset.api")

IMAGES = "image"
_BUILTIN_KEYS = frozenset(image.key for image in BUILTIN_IMAGES)
_PATH_FIELDS = ("publisher", "offer", "sku", "version")
_published: weakref.WeakKeyDictionary[Store, tuple[ImageVersion, ...]] = weakref.WeakKeyDictionary()


def _sort_key(image: ImageVersion) -> tuple[Any, ...]:
    return (*image.identity, version_key(image.version))


def published_images(store: Store) -> tuple[ImageVersion, ...]:
    """The versions users published (cached per store; a stored document that no longer validates is skipped)."""
    cached = _published.get(store)
    if cached is not None:
        return cached
    images: list[ImageVersion] = []
    for key, data in store.list_documents(IMAGES):
        try:
            images.append(ImageVersion.model_validate(data))
        except ValidationError as exc:
            log.warning("ignoring the stored image %s: %s", key, exc)
    found = tuple(sorted(images, key=_sort_key))
    _published[store] = found
    return found


def catalogue_images(store: Store) -> list[ImageVersion]:
    """The whole catalogue: the built-in versions, then the published ones."""
    return [*BUILTIN_IMAGES, *published_images(store)]


def is_builtin(key: str) -> bool:
    return key.lower() in _BUILTIN_KEYS


def publish(store: Store, image: ImageVersion) -> bool:
    """Store a published version (not a built-in one); True when it is new, False when it replaced one."""
    if is_builtin(image.key):
        raise ValueError(f"{image.urn} is built in")
    existed = store.get_document(IMAGES, image.key) is not None
    try:
        store.put_document(IMAGES, image.key, image.model_dump(mode="json", exclude_defaults=True))
    finally:
        _published.pop(store, None)
    return not existed


def unpublish(store: Store, key: str) -> bool:
    """Delete a published version; False when there was none."""
    key = key.lower()
    if store.get_document(IMAGES, key) is None:
        return False
    try:
        store.delete_document(IMAGES, key)
    finally:
        _published.pop(store, None)
    return True


def image_json(image: ImageVersion) -> dict[str, Any]:
    return {**image.model_dump(mode="json"), "builtIn": is_builtin(image.key)}


# ---------------------------------------------------------------------- routes


def _find(store: Store, key: str) -> ImageVersion | None:
    return next((image for image in catalogue_images(store) if image.key == key), None)


def _not_found(publisher: str, offer: str, sku: str, version: str) -> ApiError:
    return ApiError(404, "NotFound", f"Image version '{publisher}:{offer}:{sku}:{version}' was not found.")


async def list_images(request: Request, runtime: Runtime) -> Response:
    return json_response(request, {"value": [image_json(image) for image in catalogue_images(runtime.store)]})


async def get_image(
    request: Request, runtime: Runtime, *, publisher: str, offer: str, sku: str, version: str
) -> Response:
    image = _find(runtime.store, image_key(publisher, offer, sku, version))
    if image is None:
        raise _not_found(publisher, offer, sku, version)
    return json_response(request, image_json(image))


async def put_image(
    request: Request, runtime: Runtime, *, publisher: str, offer: str, sku: str, version: str
) -> Response:
    body = await json_body(request, required=True) or {}
    path = {"publisher": publisher, "offer": offer, "sku": sku, "version": version}
    for name in _PATH_FIELDS:
        given = body.get(name)
        if given is not None and (not isinstance(given, str) or given.lower() != path[name].lower()):
            raise ApiError(
                400,
                "InvalidParameter",
                f"'{name}' in the body ({given!r}) differs from the path ({path[name]!r}).",
                name,
            )
    try:
        image = ImageVersion.model_validate({**body, **path})
    except ValidationError as exc:
        raise invalid("image version", exc) from exc
    if is_builtin(image.key):
        raise ApiError(
            409,
            "Conflict",
            f"Image version '{image.urn}' is built in and cannot be replaced; publish another version.",
        )
    conflict = gallery_conflict(catalogue_images(runtime.store), image)
    if conflict is not None:
        raise ApiError(409, "Conflict", f"Image version '{image.urn}' cannot be published: {conflict}.", "gallery")
    created = publish(runtime.store, image)
    # A publish is an event the engine sees: scale sets tracking ``latest`` with automatic OS upgrades start one.
    starting, _ = runtime.services.catalogue_changed()
    return json_response(request, {**image_json(image), "automaticOSUpgrades": starting}, 201 if created else 200)


async def delete_image(
    request: Request, runtime: Runtime, *, publisher: str, offer: str, sku: str, version: str
) -> Response:
    key = image_key(publisher, offer, sku, version)
    if is_builtin(key):
        raise ApiError(
            409, "Conflict", f"Image version '{publisher}:{offer}:{sku}:{version}' is built in and cannot be deleted."
        )
    if not unpublish(runtime.store, key):
        raise _not_found(publisher, offer, sku, version)
    runtime.services.catalogue_changed()
    return json_response(request, None, 204)
