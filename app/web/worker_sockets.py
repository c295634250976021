"""Worker processes that each listen on a socket of their own, so the kernel spreads connections.

uvicorn's workers share one listening socket, and the worker that wakes first accepts every
connection waiting in it: a burst of new keep-alive connections (a provider's pool, a load
balancer's) can all land on one worker while the others idle. Measured with the ingestion
benchmark, 32 connections split 32/0 or 22/10 from run to run, and throughput with them.

Here the parent binds the address with SO_REUSEPORT and never listens on it: it only holds the
port. Each worker, when it receives that socket, binds a fresh SO_REUSEPORT socket to the same
address instead, and the kernel balances new connections across the workers' listening sockets
(by a hash of each connection's addresses).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
from typing import Any

import uvicorn
from prometheus_client.multiprocess import mark_process_dead
from uvicorn.supervisors import Multiprocess

logger = logging.getLogger("uvicorn.error")

SUPERVISOR_PID = "CAMPAIGN_SUPERVISOR_PID"
"""Set by ``run_workers`` in the environment its workers inherit: the supervisor's pid."""
PR_SET_PDEATHSIG = 1


def _bind(sock: socket.socket, host: str, port: int) -> socket.socket:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _reuseport_socket(family: socket.AddressFamily, host: str, port: int) -> socket.socket:
    return _bind(socket.socket(family=family), host, port)


class PortHolder(socket.socket):
    """The parent's socket; handed to a worker process, it becomes that worker's own socket."""

    def __reduce__(self) -> tuple[Any, ...]:
        host, port = self.getsockname()[:2]
        return (_reuseport_socket, (self.family, host, port))


class BalancedConfig(uvicorn.Config):
    def bind_socket(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        holder = _bind(PortHolder(family=family), self.host, self.port)
        holder.set_inheritable(True)
        logger.info("Uvicorn running on http://%s:%d", self.host, holder.getsockname()[1])
        return holder


class MetricsAwareMultiprocess(Multiprocess):
    """uvicorn's supervisor, telling prometheus_client which workers have gone (died and
    replaced, stopped by a signal, retired by a restart), so that their live gauges (the pool's
    connections) leave the group's sum; their counters stay in it, as a counter must."""

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket]) -> None:
        super().__init__(config, sockets)
        self._known: set[int] = set()

    def _mark_departed(self) -> None:
        current = {p.pid for p in self.processes if p.pid is not None and p.process.is_alive()}
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        for pid in self._known - current:
            if directory:
                mark_process_dead(pid, directory)
        self._known = current

    def keep_subprocess_alive(self) -> None:
        super().keep_subprocess_alive()
        self._mark_departed()

    def handle_signals(self) -> None:
        super().handle_signals()
        self._mark_departed()

    def join_all(self) -> None:
        super().join_all()
        self._mark_departed()


def follow_supervisor() -> None:
    """In a worker of ``run_workers``: have the kernel send it SIGTERM when the supervisor
    dies, however it dies. A supervisor killed with SIGKILL cannot stop its workers, and they
    went on serving, orphaned, on their own sockets. Linux only (``prctl``); elsewhere a
    killed supervisor still leaves its workers running."""
    supervisor = os.environ.get(SUPERVISOR_PID)
    if supervisor is None or not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        logger.warning("a worker will outlive a killed supervisor: prctl failed")
        return
    if os.getppid() != int(supervisor):  # it died before the kernel was asked
        os.kill(os.getpid(), signal.SIGTERM)


def run_workers(app: str, workers: int, **options: Any) -> None:
    """uvicorn.run(app, workers=workers, factory=True, ...), each worker on its own socket
    and following the supervisor in death (``follow_supervisor``)."""
    os.environ[SUPERVISOR_PID] = str(os.getpid())
    config = BalancedConfig(app, factory=True, workers=workers, **options)
    supervisor = MetricsAwareMultiprocess(config, sockets=[config.bind_socket()])
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: the workers have been stopped
        supervisor.run()
