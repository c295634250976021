"""CPU time spent by processes on this machine, read from /proc (Linux): what one stored event
costs the database and the server, as opposed to what wall-clock rates suggest."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def _stats() -> dict[int, tuple[str, int, float]]:
    """pid → (command name, parent pid, CPU seconds of it and its reaped children)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        # utime, stime, cutime, cstime: fields 14-17 of proc(5), counted from the state.
        ticks = sum(int(value) for value in fields[11:15])
        found[int(entry.name)] = (name, int(fields[1]), ticks / _TICKS)
    return found


def postgres_cpu_s() -> float | None:
    """CPU seconds of every process named ``postgres`` here; None when there is none (the
    database runs elsewhere)."""
    times = _postgres_cpu_times()
    return sum(times) if times else None


def wait_for_postgres_processes(count: int, timeout_s: float = 5.0) -> None:
    """Wait until at most ``count`` processes named ``postgres`` are left: a backend's CPU
    time reaches the postmaster's only once the postmaster has reaped it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if postgres_process_count() <= count:
            return
        time.sleep(0.05)


def postgres_process_count() -> int:
    """How many processes named ``postgres`` run here."""
    return len(_postgres_cpu_times())


def _postgres_cpu_times() -> list[float]:
    """CPU seconds of each process named ``postgres`` here."""
    return [cpu for name, _, cpu in _stats().values() if name == "postgres"]


def tree_cpu_s(root: int) -> float:
    """CPU seconds of ``root`` and its live descendants (a server and its workers)."""
    stats = _stats()
    tree, total = [root], 0.0
    for pid in tree:
        tree.extend(child for child, (_, parent, _) in stats.items() if parent == pid)
        total += stats.get(pid, ("", 0, 0.0))[2]
    return total


def cpu_by_pid(pids: Iterable[int]) -> dict[int, float]:
    """CPU seconds of each of ``pids`` still running (database backends, say: what one
    database's sessions cost, apart from the other databases on the same server)."""
    stats = _stats()
    return {pid: stats[pid][2] for pid in pids if pid in stats}
