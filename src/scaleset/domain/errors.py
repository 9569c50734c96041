"""Domain errors: data with stable ARM codes, rendered by the edges (API, CLI, scenario runner).

Every rejection the domain makes is a :class:`DomainError` carrying the ARM error ``code``, a human ``message``
in Azure's wording where it is known, and the ``target`` (the dotted path of the offending field) where one exists.
The HTTP status lives here too, so one table maps every error to its response.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Codes, one place. Azure's own spellings.
BAD_REQUEST = "BadRequest"
INVALID_PARAMETER = "InvalidParameter"
PROPERTY_CHANGE_NOT_ALLOWED = "PropertyChangeNotAllowed"
OPERATION_NOT_ALLOWED = "OperationNotAllowed"
NOT_FOUND = "NotFound"
RESOURCE_NOT_FOUND = "ResourceNotFound"
CONFLICT = "Conflict"

# Rolling upgrade verdict codes (status document errors and failed operations).
MAX_UNHEALTHY_BEFORE = "MaxUnhealthyInstancePercentExceededBeforeRollingUpgrade"
MAX_UNHEALTHY_IN = "MaxUnhealthyInstancePercentExceededInRollingUpgrade"
MAX_UNHEALTHY_UPGRADED = "MaxUnhealthyUpgradedInstancePercentExceededInRollingUpgrade"
ROLLING_UPGRADE_CANCELED = "RollingUpgradeCanceled"
UPGRADE_FAILED = "VMUpgradeFailed"


@dataclass(frozen=True, slots=True)
class DomainError(Exception):
    """A rejected request or a failed operation, as ARM reports it."""

    code: str
    message: str
    target: str | None = None
    status: int = 400

    def __str__(self) -> str:
        return f"({self.code}) {self.message}"

    def to_arm(self) -> dict[str, Any]:
        """The ARM error object (the value of the envelope's ``error`` key)."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.target is not None:
            body["target"] = self.target
        return body


def invalid_parameter(target: str, message: str | None = None) -> DomainError:
    """``InvalidParameter`` with Azure's generic wording unless a more precise message is given."""
    return DomainError(
        INVALID_PARAMETER,
        message or f"The value of parameter {target} is invalid.",
        target,
    )


def property_change_not_allowed(target: str) -> DomainError:
    return DomainError(PROPERTY_CHANGE_NOT_ALLOWED, f"Changing property '{target}' is not allowed.", target)


def operation_not_allowed(message: str, target: str | None = None) -> DomainError:
    return DomainError(OPERATION_NOT_ALLOWED, message, target, status=409)


def not_found(message: str, *, code: str = NOT_FOUND) -> DomainError:
    return DomainError(code, message, None, status=404)
