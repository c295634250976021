"""``serve --workers``: a number, or ``auto`` for one worker per core this process may run on
(its CPU affinity, which a container or taskset limits, not the machine's count); unset, ``auto``
in production and one worker elsewhere. A bad value is one line, before anything starts. The
workers stop when their supervisor dies, even killed with SIGKILL."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.cli.common import CommandError
from app.cli.serve import worker_count
from app.settings import Settings
from testkit.servers import serving
from tests.test_cli import _assert_one_line_failure, _run

WAIT_S = 20.0
"""A bound against a hang, not a timing assertion."""


@pytest.fixture
def one_core() -> Iterator[int]:
    """This process pinned to one of its cores for the test (restored after)."""
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(allowed)})
    try:
        yield 1
    finally:
        os.sched_setaffinity(0, allowed)


def _settings(environment: str) -> Settings:
    return Settings(database_url="postgresql://u@db/campaign", environment=environment)


def test_auto_is_the_cores_available_to_the_process() -> None:
    assert worker_count("auto", _settings("development")) == len(os.sched_getaffinity(0))


def test_auto_follows_the_affinity_not_the_machine(one_core: int) -> None:
    assert worker_count("auto", _settings("development")) == one_core
    assert worker_count("AUTO", _settings("production")) == one_core


def test_production_defaults_to_auto_and_development_to_one() -> None:
    assert worker_count(None, _settings("production")) == len(os.sched_getaffinity(0))
    assert worker_count(None, _settings("development")) == 1


def test_a_number_is_taken_as_given() -> None:
    assert worker_count("3", _settings("production")) == 3


@pytest.mark.parametrize(
    ("value", "message"),
    [("0", "out of range"), ("257", "out of range"), ("many", "neither a number nor 'auto'")],
)
def test_an_unusable_count_is_refused(value: str, message: str) -> None:
    with pytest.raises(CommandError, match=message):
        worker_count(value, _settings("production"))


def test_the_cli_refuses_it_in_one_line_before_touching_the_database(tmp_path: Path) -> None:
    result = _run(
        tmp_path, "serve", "--workers", "many", DATABASE_URL="postgresql://u@127.0.0.1:1/none"
    )
    _assert_one_line_failure(result, "--workers", "'many'")


def _children(pid: int) -> set[int]:
    return {
        int(child)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for child in (task / "children").read_text().split()
    }


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's parent, in a container, may never reap it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl(PR_SET_PDEATHSIG)")
def test_workers_stop_when_their_supervisor_is_killed(database_url: str, tmp_path: Path) -> None:
    with serving(database_url, tmp_path, workers=2) as served:
        workers = _children(served.process.pid)
        assert len(workers) >= 2
        served.process.kill()
        served.process.wait()
        deadline = time.monotonic() + WAIT_S
        while any(_running(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [pid for pid in workers if _running(pid)] == []
