"""Helpers for the API tests: the real server under uvicorn, a throw-away PostgreSQL, bundles as bytes.

Also a latency probe (a timing is a benchmark, never a test assertion):

    python tests/api_server.py latency [--teachers 2000] [--requests 400] [--time-limit 30] [--concurrency 8]
"""

from __future__ import annotations

import glob
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent


def wait_until_healthy(process: subprocess.Popen, url: str, timeout: float, log, what: str = "the server",
                       poll: float = 0.1) -> None:
    """Waits until GET url/healthz answers 200; fails with the log's tail if the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{log()}")
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(poll)
    raise RuntimeError(f"{what} did not answer /healthz in {timeout} s:\n{log()}")


def terminate(process: subprocess.Popen, grace: float) -> None:
    """SIGTERM, then SIGKILL if the process has not exited within `grace` seconds."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def log_tail(path: Path, chars: int = 6000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


# ------------------------------------------------------------------------------------------------
# bundles
# ------------------------------------------------------------------------------------------------

def zip_folder(folder: Path, prefix: str = "") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(Path(folder).iterdir()):
            archive.write(file, prefix + file.name)
    return buffer.getvalue()


def zip_tree(folder: Path, top: str = "nation/") -> bytes:
    """A folder of folders (a nation) as a .zip, under one top folder as an archiver makes it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(Path(folder).rglob("*")):
            if file.is_file():
                archive.write(file, top + file.relative_to(folder).as_posix())
    return buffer.getvalue()


def zip_members(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(zipfile.ZipInfo(name, (2025, 1, 1, 0, 0, 0)), content, zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def folder_members(folder: Path) -> dict[str, bytes]:
    return {file.name: file.read_bytes() for file in sorted(Path(folder).iterdir())}


# ------------------------------------------------------------------------------------------------
# the server
# ------------------------------------------------------------------------------------------------

class Server:
    """`python -m uvicorn api.main:app_factory --factory` in its own process group."""

    def __init__(self, database_url: str, *, host: str = "127.0.0.1", env: dict | None = None,
                 log_dir: Path | None = None) -> None:
        self.database_url = database_url
        self.host, self.port = host, free_port(host)
        self.url = f"http://{host}:{self.port}"
        self.tag = uuid.uuid4().hex  # marks this server and every process it starts (see processes())
        self.log_path = Path(log_dir or tempfile.mkdtemp(prefix="marshrut-api-")) / f"server-{self.port}.log"
        self.env = {**os.environ, "MARSHRUT_DATABASE_URL": database_url, "MARSHRUT_TEST_TAG": self.tag,
                    "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
                    "PYTHONUNBUFFERED": "1", **(env or {})}
        self.env.setdefault("MARSHRUT_HOST", host)
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> Server:
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "marshrut.api.main:app_factory", "--factory", "--host", self.host,
             "--port", str(self.port), "--log-level", "info"],
            cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        wait_until_healthy(self.process, self.url, timeout, self.log)
        return self

    def log(self) -> str:
        return log_tail(self.log_path)

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60, **kwargs)

    def processes(self) -> list[int]:
        """Pids of live processes started by this server (its env carries the tag), itself included."""
        needle = f"MARSHRUT_TEST_TAG={self.tag}".encode()
        found = []
        for environ in glob.glob("/proc/[0-9]*/environ"):
            try:
                with open(environ, "rb") as handle:
                    if needle in handle.read().split(b"\0"):
                        pid = int(environ.split("/")[2])
                        with open(f"/proc/{pid}/stat", "rb") as stat:
                            if stat.read().rpartition(b")")[2].split()[0] != b"Z":
                                found.append(pid)
            except (OSError, ValueError, IndexError):
                continue
        return found

    def kill9(self) -> None:
        """SIGKILL the server process alone (its solver processes must notice and exit)."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None:
            return
        terminate(self.process, grace=20)
        try:  # anything of ours still around (the group is this server's own session)
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for pid in self.processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def wait_for(client: httpx.Client, plan_id: str, statuses=("done", "failed", "cancelled"),
             timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        plan = client.get(f"/v1/plans/{plan_id}").json()
        if plan["status"] in statuses:
            return plan
        if time.monotonic() > deadline:
            raise AssertionError(f"plan {plan_id} still {plan['status']} after {timeout} s")
        time.sleep(0.1)


# ------------------------------------------------------------------------------------------------
# a throw-away PostgreSQL cluster
# ------------------------------------------------------------------------------------------------

def _postgres_bin() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
                        if p.split("/")[4].isdigit() else 0)
    if candidates:
        return Path(candidates[-1]).parent
    initdb = shutil.which("initdb") or shutil.which("pg_ctl")
    if initdb:
        return Path(os.path.realpath(initdb)).parent
    raise RuntimeError("PostgreSQL binaries not found (no initdb in /usr/lib/postgresql/*/bin or on PATH)")


def _unprivileged_user() -> str | None:
    """initdb refuses root: run the cluster as an existing unprivileged user."""
    if os.geteuid() != 0:
        return None
    import pwd

    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root and no `postgres` or `nobody` user to run PostgreSQL as")


class Postgres:
    """initdb in a temporary folder, a free port on 127.0.0.1, trust authentication, no fsync."""

    def __init__(self) -> None:
        self.bin = _postgres_bin()
        self.user = _unprivileged_user()
        self.root = Path(tempfile.mkdtemp(prefix="marshrut-pg-"))
        self.data = self.root / "data"
        self.port = free_port()

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        command = [str(self.bin / args[0]), *args[1:]]
        if self.user:
            runner = shutil.which("runuser")
            command = [runner, "-u", self.user, "--", *command] if runner else \
                ["su", self.user, "-s", "/bin/sh", "-c", " ".join(f"'{c}'" for c in command)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=self.root)
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}\n"
                               f"{self.server_log()}")
        return result

    def server_log(self) -> str:
        try:
            return (self.root / "postgres.log").read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def start(self) -> Postgres:
        if self.user:
            shutil.chown(self.root, self.user)
        self._run("initdb", "-D", str(self.data), "-U", "marshrut", "--auth=trust", "-E", "UTF8", "--no-locale",
                  "--no-sync")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "postgres.log"), "-w", "-t", "60", "-o",
                  f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                  "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200", "start")
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://marshrut@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        import psycopg

        name = "marshrut_" + uuid.uuid4().hex[:12]
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=marshrut dbname=postgres",
                             autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", timeout=60)
        except (RuntimeError, subprocess.TimeoutExpired):
            pass
        shutil.rmtree(self.root, ignore_errors=True)


# ------------------------------------------------------------------------------------------------
# latency under load during a solve
# ------------------------------------------------------------------------------------------------

def latency(teachers: int = 2000, requests: int = 400, time_limit: float = 30, concurrency: int = 8) -> None:
    """Median and p95 of GET latencies from `concurrency` clients while a plan is being solved."""
    import statistics
    from concurrent.futures import ThreadPoolExecutor

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from oracle import random_bundle

    work = Path(tempfile.mkdtemp(prefix="marshrut-latency-"))
    bundle = random_bundle(11, work / "bundle", teachers=teachers, schools=max(5, teachers // 20),
                           mentors=max(4, teachers // 10), sites=max(3, teachers // 50),
                           programs=max(4, teachers // 40))
    with Server(f"sqlite:///{work}/latency.sqlite", log_dir=work) as server, server.client() as client:
        region = client.post("/v1/regions", files={"file": ("region.zip", zip_folder(bundle))}).json()
        plan = client.post("/v1/plans", json={"region_id": region["region_id"],
                                              "params": {"time_limit_s": time_limit}}).json()
        wait_for(client, plan["plan_id"], statuses=("running",))
        time.sleep(1.0)  # past loading: the solver is busy
        paths = [f"/v1/plans/{plan['plan_id']}", "/v1/regions", f"/v1/regions/{region['region_id']}", "/healthz"]

        def worker(offset: int) -> list[float]:
            seconds = []
            with server.client() as http:
                for i in range(offset, requests, concurrency):
                    started = time.perf_counter()
                    response = http.get(paths[i % len(paths)])
                    seconds.append(time.perf_counter() - started)
                    assert response.status_code == 200, response.text
            return seconds

        started = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            seconds = [s for part in pool.map(worker, range(concurrency)) for s in part]
        wall = time.perf_counter() - started
        status = client.get(f"/v1/plans/{plan['plan_id']}").json()["status"]
        ms = sorted(s * 1000 for s in seconds)
        p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
        print(f"{len(ms)} GETs from {concurrency} clients in {wall:.1f} s during a solve of {teachers} teachers "
              f"(plan still {status}): median {statistics.median(ms):.1f} ms, p95 {p95:.1f} ms, max {ms[-1]:.1f} ms")
        client.delete(f"/v1/plans/{plan['plan_id']}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["latency"])
    parser.add_argument("--teachers", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--time-limit", type=float, default=30)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    latency(args.teachers, args.requests, args.time_limit, args.concurrency)
