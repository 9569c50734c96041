"""Every failure becomes one line, ``(Code) message``, and an exit code, as ``az`` does it.

Exit codes: 0 success; 1 any failure (a service error, a failed or faulted operation, a timeout); 2 invalid usage
(bad flags or values, caught before any request where possible); 3 the resource was not found (HTTP 404). No
traceback reaches the user.
"""

from __future__ import annotations

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3


class CliError(Exception):
    """A failure the CLI itself reports, with the code and exit status it should carry."""

    def __init__(self, code: str, message: str, *, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(f"({code}) {message}")
        self.code = code
        self.message = message
        self.exit_code = exit_code


class UsageError(CliError):
    """Invalid usage found after parsing (a bad ``--set`` path, an option that does not apply here)."""

    def __init__(self, message: str) -> None:
        super().__init__("InvalidArgumentValue", message, exit_code=EXIT_USAGE)


def one_line(text: str) -> str:
    """The first non-empty line, with its whitespace runs collapsed."""
    for line in text.splitlines():
        if line.strip():
            return " ".join(line.split())
    return ""


def _connection_cause(exc: BaseException) -> BaseException | None:
    """The connection failure behind an exception (a token request that never reached the server), if any."""
    seen: BaseException | None = exc
    for _ in range(10):  # a cause chain is short; never loop on a cycle
        if seen is None:
            return None
        if isinstance(seen, (ServiceRequestError, ServiceResponseError)):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def describe(exc: BaseException, *, endpoint: str | None = None) -> tuple[str, int]:
    """The line to print for an exception, and the exit code."""
    if isinstance(exc, CliError):
        return f"({exc.code}) {one_line(exc.message)}", exc.exit_code
    unreachable = _connection_cause(exc)
    if unreachable is not None:
        exc = unreachable
    if isinstance(exc, ClientAuthenticationError) and exc.error is None:
        detail = one_line(exc.message or str(exc))
        return f"(AuthenticationFailed) {detail}", EXIT_FAILED
    if isinstance(exc, HttpResponseError):
        code: str | None = None
        message: str | None = None
        if exc.error is not None:
            code, message = exc.error.code, exc.error.message
        if not code:
            code = exc.reason.replace(" ", "") if exc.reason else f"HTTP{exc.status_code or ''}"
        if not message:
            message = exc.message or str(exc)
        not_found = isinstance(exc, ResourceNotFoundError) or exc.status_code == 404
        return f"({code}) {one_line(message)}", EXIT_NOT_FOUND if not_found else EXIT_FAILED
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        where = f" {endpoint}" if endpoint else ""
        hint = " Is 'scaleset serve' running there?" if endpoint else ""
        return f"(ConnectionError) Could not reach{where}: {one_line(str(exc))}.{hint}", EXIT_FAILED
    if isinstance(exc, KeyboardInterrupt):
        return "(Interrupted) Stopped by the user; operations already sent keep running on the server.", 130
    name = type(exc).__name__
    return f"(InternalError) {name}: {one_line(str(exc)) or 'no details'}", EXIT_FAILED
