"""Load held: many clients reading results and uploading while plans solve, on loopback.

    python -m marshrut.benchmarks.load [--clients 50] [--requests 40] [--solves 4] [--max-seconds 300]
                                       [--database-url URL] [--out benchmarks/results/load.json]

Starts its own server (uvicorn, bound to 127.0.0.1 only; SQLite in a temporary folder unless
--database-url names a database), makes one admin key and a planner key per client (clients are
spread over five tenants), uploads a small region per tenant and solves it (the plans read
during the load), then queues `--solves` long plans of a larger region and, while they are
running, lets `--clients` threads each make `--requests` requests: reads of plans, assignments,
routes, region lists and summaries, and every tenth request an upload of a bundle. Bounded in
count and time: the load stops after `--max-seconds` whatever is left.

Reports the status codes (no 5xx is the pass mark: exit 1 otherwise), the median and 95th
percentile latency of reads and of uploads, and whether the solves were still running at the end
of the load. The machine's load average is printed with the figures: timings on a shared machine
are noisy.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import httpx

ADMIN_KEY = "load-test-admin-" + os.urandom(8).hex()
TENANTS = ("north", "south", "east", "west", "centre")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _zip(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(folder.iterdir()):
            if not file.name.startswith("_"):
                archive.write(file, file.name)
    return buffer.getvalue()


def _bundle(work: Path, preset: str, seed: int, teachers: int | None) -> bytes:
    from marshrut.datasets.generator import generate_bundle

    return _zip(generate_bundle(preset, work / f"{preset}-{seed}-{teachers}", seed=seed, teachers=teachers))


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _wait(http: httpx.Client, plan_id: str, key: str, statuses: tuple[str, ...], timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        plan = http.get(f"/v1/plans/{plan_id}", headers={"X-API-Key": key}).json()
        if plan["status"] in statuses or time.monotonic() > deadline:
            return plan
        time.sleep(0.2)


def run(clients: int, requests: int, solves: int, max_seconds: float, database_url: str | None,
        solve_seconds: float) -> dict:
    work = Path(tempfile.mkdtemp(prefix="marshrut-load-"))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "MARSHRUT_DATABASE_URL": database_url or f"sqlite:///{work}/load.sqlite",
           "MARSHRUT_HOST": "127.0.0.1", "MARSHRUT_API_KEYS": f"{ADMIN_KEY}:admin",
           "MARSHRUT_MAX_CONCURRENT_SOLVES": str(solves), "MARSHRUT_MAX_JOBS_PER_TENANT": str(solves + 4)}
    log = open(work / "server.log", "wb")
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", "marshrut.api.main:app_factory", "--factory",
                               "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                              env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        with httpx.Client(base_url=url, timeout=120) as http:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if http.get("/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the server did not start:\n" + (work / "server.log").read_text()[-3000:])
                time.sleep(0.2)
            admin = {"X-API-Key": ADMIN_KEY}
            keys = [http.post("/v1/keys", json={"tenant": TENANTS[i % len(TENANTS)], "role": "planner"},
                              headers=admin).json()["key"] for i in range(clients)]
            small = _bundle(work, "tomsk-school-44", 0, None)
            large = _bundle(work, "krymsky-district", 0, 400)
            # one region and one done plan per tenant: what the clients read
            reads: dict[str, dict] = {}
            for i, tenant in enumerate(TENANTS[:min(len(TENANTS), clients)]):
                key = keys[i]
                region = http.post("/v1/regions", files={"file": ("small.zip", small)},
                                   headers={"X-API-Key": key}).json()["region_id"]
                plan = http.post("/v1/plans", json={"region_id": region, "params": {"time_limit_s": 3}},
                                 headers={"X-API-Key": key}).json()["plan_id"]
                reads[tenant] = {"region_id": region, "plan_id": plan}
            teachers = []
            for tenant, ids in reads.items():
                key = keys[TENANTS.index(tenant)]
                done = _wait(http, ids["plan_id"], key, ("done", "failed", "cancelled"), 300)
                if done["status"] != "done":
                    raise RuntimeError(f"the plan to read was not solved: {done['status']}")
                rows = http.get(f"/v1/plans/{ids['plan_id']}/assignments", headers={"X-API-Key": key}).json()
                teachers = sorted({row["teacher_id"] for row in rows["assignments"]})
                ids["teachers"] = teachers or ["none"]
            # the long solves, of one tenant's larger region
            key0 = keys[0]
            big = http.post("/v1/regions", files={"file": ("large.zip", large)},
                            headers={"X-API-Key": key0}).json()["region_id"]
            long_plans = [http.post("/v1/plans", json={"region_id": big, "params": {"time_limit_s": solve_seconds}},
                                    headers={"X-API-Key": key0}).json()["plan_id"] for _ in range(solves)]
            for plan_id in long_plans:
                _wait(http, plan_id, key0, ("running", "done", "failed"), 120)
            time.sleep(1.0)  # past loading: the solvers are busy

            results: list[tuple[str, int, float]] = []
            lock = threading.Lock()
            stop_at = time.monotonic() + max_seconds

            def client(index: int) -> None:
                key = keys[index]
                tenant = TENANTS[index % len(TENANTS)]
                ids = reads[tenant]
                chooser = random.Random(index)
                mine = []
                with httpx.Client(base_url=url, timeout=120, headers={"X-API-Key": key}) as own:
                    for n in range(requests):
                        if time.monotonic() > stop_at:
                            break
                        if n % 10 == 9:
                            kind, call = "upload", lambda: own.post("/v1/regions",
                                                                    files={"file": ("upload.zip", small)})
                        else:
                            path = chooser.choice([
                                f"/v1/plans/{ids['plan_id']}", f"/v1/plans/{ids['plan_id']}/assignments",
                                f"/v1/plans/{ids['plan_id']}/routes/{chooser.choice(ids['teachers'])}",
                                "/v1/regions", f"/v1/plans/{ids['plan_id']}/summary", "/v1/plans"])
                            kind, call = "read", lambda path=path: own.get(path)
                        started = time.perf_counter()
                        try:
                            status = call().status_code
                        except httpx.HTTPError as error:  # refused, reset, timed out: as bad as a 5xx
                            status = type(error).__name__
                        mine.append((kind, status, time.perf_counter() - started))
                with lock:
                    results.extend(mine)

            started = time.perf_counter()
            threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            wall = time.perf_counter() - started
            states = [http.get(f"/v1/plans/{p}", headers={"X-API-Key": key0}).json()["status"] for p in long_plans]
            for plan_id in long_plans:
                http.delete(f"/v1/plans/{plan_id}", headers={"X-API-Key": key0})
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
        try:
            os.killpg(server.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        log.close()
        server_log = (work / "server.log").read_text(errors="replace").splitlines()
        shutil.rmtree(work, ignore_errors=True)

    codes: dict[str, int] = {}
    for _, status, _ in results:
        codes[str(status)] = codes.get(str(status), 0) + 1
    report = {"clients": clients, "requests_per_client": requests, "solves": solves, "solve_time_limit_s": solve_seconds,
              "requests": len(results), "wall_seconds": round(wall, 1), "status_codes": codes,
              "server_errors": sum(1 for _, s, _ in results if isinstance(s, str) or s >= 500),
              "solves_running_at_end": states.count("running"), "solve_states_at_end": states,
              "server_log_errors": [line[-300:] for line in server_log if " ERROR " in line or "Traceback" in line][:20],
              "load_average": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count(),
              "taken_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    for kind in ("read", "upload"):
        ms = [s * 1000 for k, _, s in results if k == kind]
        if ms:
            report[kind] = {"count": len(ms), "median_ms": round(statistics.median(ms), 1),
                            "p95_ms": round(_percentile(ms, 0.95), 1), "max_ms": round(max(ms), 1)}
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m marshrut.benchmarks.load", description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=40, help="requests per client")
    parser.add_argument("--solves", type=int, default=4, help="plans solving during the load")
    parser.add_argument("--solve-seconds", type=float, default=300, help="time limit of each of those plans")
    parser.add_argument("--max-seconds", type=float, default=300, help="the load stops after this, whatever is left")
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temporary folder")
    parser.add_argument("--out", type=Path, default=None, help="also write the report here as JSON")
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= 500 or not 1 <= args.requests <= 10_000 or not 0 <= args.solves <= 16:
        parser.error("clients 1..500, requests 1..10000, solves 0..16")
    report = run(args.clients, args.requests, args.solves, args.max_seconds, args.database_url, args.solve_seconds)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
    return 1 if report["server_errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
