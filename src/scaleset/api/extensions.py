"""The extension catalogue's routes, under ``/_scaleset/extensions``, and the catalogue the engine reads.

Published extension versions are store documents of kind ``"extension"`` keyed ``publisher/type/version``
lower-cased. Publishing one is an event the engine sees: scale sets with an extension that has
``enableAutomaticUpgrade`` and the same major version start an extension rolling upgrade.

* ``GET /_scaleset/extensions``: every published version.
* ``PUT /_scaleset/extensions/{publisher}/{type}/{version}``: publish (201 new, 200 replaced); the body may be
  empty or hold ``description``.
* ``GET`` / ``DELETE`` of ``/_scaleset/extensions/{publisher}/{type}/{version}`` (404 when unknown).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from scaleset.api.http import ApiError, invalid, json_body, json_response
from scaleset.domain.extensions import ExtensionVersion, extension_key
from scaleset.domain.images import version_key
from scaleset.store.base import Store

if TYPE_CHECKING:  # runtime.py imports this module for the catalogue
    from scaleset.api.runtime import Runtime

EXTENSIONS = "extension"


def published_extensions(store: Store) -> list[ExtensionVersion]:
    found = []
    for _key, data in store.list_documents(EXTENSIONS):
        try:
            found.append(ExtensionVersion.model_validate(data))
        except ValidationError:
            continue  # a document an older version wrote that no longer validates: not in the catalogue
    return sorted(found, key=lambda e: (e.publisher.lower(), e.type.lower(), version_key(e.version)))


def versions_of(store: Store, publisher: str, kind: str) -> list[str]:
    """The engine's extension catalogue: the published versions of ``publisher``/``kind``."""
    return [
        e.version
        for e in published_extensions(store)
        if e.publisher.lower() == publisher.lower() and e.type.lower() == kind.lower()
    ]


def _not_found(publisher: str, kind: str, version: str) -> ApiError:
    return ApiError(404, "NotFound", f"Extension version '{publisher}/{kind}/{version}' was not found.")


async def list_extensions(request: Request, runtime: Runtime) -> Response:
    return json_response(request, {"value": [e.model_dump() for e in published_extensions(runtime.store)]})


async def get_extension(request: Request, runtime: Runtime, *, publisher: str, kind: str, version: str) -> Response:
    data = runtime.store.get_document(EXTENSIONS, extension_key(publisher, kind, version))
    if data is None:
        raise _not_found(publisher, kind, version)
    return json_response(request, data)


async def put_extension(request: Request, runtime: Runtime, *, publisher: str, kind: str, version: str) -> Response:
    body = await json_body(request, required=False) or {}
    unknown = sorted(set(body) - {"publisher", "type", "version", "description"})
    if unknown:
        raise ApiError(400, "InvalidParameter", f"Unknown field '{unknown[0]}' in an extension version.", unknown[0])
    try:
        extension = ExtensionVersion.model_validate(
            {"description": body.get("description", ""), "publisher": publisher, "type": kind, "version": version}
        )
    except ValidationError as exc:
        raise invalid("extension version", exc) from exc
    existed = runtime.store.get_document(EXTENSIONS, extension.key) is not None
    runtime.store.put_document(EXTENSIONS, extension.key, extension.model_dump())
    _, extension_upgrades = runtime.services.catalogue_changed()
    answer = {**extension.model_dump(), "extensionUpgradesDue": len(extension_upgrades)}
    return json_response(request, answer, 200 if existed else 201)


async def delete_extension(request: Request, runtime: Runtime, *, publisher: str, kind: str, version: str) -> Response:
    key = extension_key(publisher, kind, version)
    if runtime.store.get_document(EXTENSIONS, key) is None:
        raise _not_found(publisher, kind, version)
    runtime.store.delete_document(EXTENSIONS, key)
    runtime.services.catalogue_changed()
    return json_response(request, None, 204)
