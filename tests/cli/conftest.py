"""A live ``scaleset serve`` for the client's tests, and a helper that runs ``scaleset ...`` in-process against it.

The server is a real process on a free loopback port with real TLS, as in ``tests/api``; the client runs through
``scaleset.main.main`` with capsys, so each call is one CLI invocation with its own token, parsing and output.
"""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jmespath
import pytest
from tests.api.conftest import start_server

from scaleset.main import main

TIME_SCALE = 600.0  # a PT5M pause passes in half a second


@dataclass(frozen=True)
class LiveServer:
    base: str
    data_dir: Path


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def q(self, expression: str) -> Any:
        """A JMESPath query over the JSON output."""
        return jmespath.search(expression, self.json())


Run = Callable[..., Result]


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data_dir = tmp_path_factory.mktemp("cli-serve")
    process, server = start_server(data_dir, time_scale=TIME_SCALE)
    try:
        yield LiveServer(server.base, data_dir)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def scaleset(live_server: LiveServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    """``scaleset(*argv)`` runs one CLI command against the live server (found through the environment, as a
    user's shell would have it) and returns its exit code and output."""
    monkeypatch.setenv("SCALESET_ENDPOINT", live_server.base)
    monkeypatch.setenv("SCALESET_DATA_DIR", str(live_server.data_dir))

    def run(*argv: str) -> Result:
        capsys.readouterr()
        code = main(list(argv))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run
