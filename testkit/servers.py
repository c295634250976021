"""``campaign-api serve`` processes as an operator starts them, on free ports over one database:
for the tests and benchmarks of what several processes must promise together (one shutdown,
one set of limits, one stream of live updates)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

CLI = Path(sys.executable).parent / "campaign-api"
READY_WITHIN_S = 30.0
STOP_WITHIN_S = 30.0


@dataclass(slots=True)
class Served:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def server_environment(database_url: str, **extra: str) -> dict[str, str]:
    """The caller's environment without its own settings, pointed at ``database_url``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "PYTHONWARNINGS") and not key.startswith("CAMPAIGN_")
    }
    return env | {"DATABASE_URL": database_url, "CAMPAIGN_LOG_LEVEL": "info"} | extra


@contextmanager
def serving(
    database_url: str,
    directory: Path,
    *,
    workers: int = 1,
    name: str = "server",
    **extra_env: str,
) -> Iterator[Served]:
    """One ``campaign-api serve`` until the block ends (then stopped); fails with its log if
    it exits or is not ready within ``READY_WITHIN_S``."""
    port = free_port()
    log = directory / f"{name}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(CLI), "serve", "--port", str(port), "--workers", str(workers)],
            env=server_environment(database_url, **extra_env),
            cwd=directory,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    served = Served(process, port, log)
    try:
        deadline = time.monotonic() + READY_WITHIN_S
        while True:
            if process.poll() is not None:
                raise AssertionError(f"{name} exited:\n{log.read_text()}")
            try:
                if httpx.get(f"{served.base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{name} never became ready:\n{log.read_text()}")
            time.sleep(0.1)
        yield served
    finally:
        if process.poll() is None:
            # SIGTERM: under --workers N the supervisor stops its workers (SIGKILL would leave
            # them running, orphaned) and removes its metrics directory.
            process.terminate()
            try:
                process.wait(timeout=STOP_WITHIN_S)
            except subprocess.TimeoutExpired:
                process.kill()
        process.wait()


@contextmanager
def several(
    database_url: str, directory: Path, count: int, **extra_env: str
) -> Iterator[list[Served]]:
    """``count`` servers over one database, each a process of its own on a port of its own."""
    with ExitStack() as stack:
        yield [
            stack.enter_context(serving(database_url, directory, name=f"server{n}", **extra_env))
            for n in range(count)
        ]
