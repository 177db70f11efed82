"""Tenants, roles, keys, audit, deletion, job limits and rates, over HTTP against the real server
(uvicorn), on SQLite and PostgreSQL.

The server is bound to a non-loopback address of this machine when it has one (so that "no key
off loopback" is what it says); otherwise to 127.0.0.2 with MARSHRUT_REQUIRE_API_KEYS.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
from api_server import Server, wait_for, zip_folder, zip_tree
from nation_oracle import random_nation
from oracle import random_bundle
from sqlalchemy import create_engine, inspect, text

REPO = Path(__file__).resolve().parent.parent
ADMIN = "root-secret-for-tests"
ENV_PLANNER = "north-env-planner"  # MARSHRUT_API_KEYS: key:role:tenant
ENV_VIEWER = "default-env-viewer"  # MARSHRUT_API_KEYS: key:role -> tenant default
SERVER_ENV = {"MARSHRUT_API_KEYS": f"{ADMIN}:admin,{ENV_PLANNER}:planner:north,{ENV_VIEWER}:viewer",
              "MARSHRUT_MAX_CONCURRENT_SOLVES": "1", "MARSHRUT_MAX_JOBS_PER_TENANT": "3",
              "MARSHRUT_RATE_PER_SECOND": "1000", "MARSHRUT_RATE_BURST": "1000"}
UNKNOWN_ID = "0" * 32


def exposed_address() -> tuple[str, dict]:
    """A non-loopback IPv4 address of this machine, or 127.0.0.2 with keys required."""
    try:
        candidates = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=10).stdout.split()
    except (OSError, subprocess.TimeoutExpired):
        candidates = []
    for address in candidates:
        if re.fullmatch(r"\d+\.\d+\.\d+\.\d+", address) and not address.startswith("127."):
            try:
                with socket.socket() as sock:
                    sock.bind((address, 0))
                return address, {}
            except OSError:
                continue
    return "127.0.0.2", {"MARSHRUT_REQUIRE_API_KEYS": "true"}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return random_bundle(3, tmp_path_factory.mktemp("tenants") / "bundle", teachers=20)


@pytest.fixture(scope="module")
def slow_bundle(tmp_path_factory) -> Path:
    return random_bundle(1, tmp_path_factory.mktemp("tenants-slow") / "bundle", teachers=80, schools=5, mentors=8,
                         sites=3, programs=4)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request, tmp_path_factory):
    directory = tmp_path_factory.mktemp(f"tenants-{request.param}")
    url = f"sqlite:///{directory}/marshrut.sqlite" if request.param == "sqlite" else \
        request.getfixturevalue("postgres").create_database()
    host, extra = exposed_address()
    with Server(url, host=host, env={**SERVER_ENV, **extra}, log_dir=directory) as running:
        running.backend = request.param
        running.directory = directory
        yield running


def key_header(key: str) -> dict:
    return {"X-API-Key": key}


def cli_key(server, tenant: str, role: str, *extra: str) -> dict:
    """`marshrut keys create --json` against the server's database."""
    result = subprocess.run([sys.executable, "-m", "marshrut", "keys", "create", "--tenant", tenant, "--role", role,
                             "--json", *extra], capture_output=True, text=True, timeout=120, cwd=server.directory,
                            env={**os.environ, "MARSHRUT_DATABASE_URL": server.database_url})
    assert result.returncode == 0, result.stderr
    made = json.loads(result.stdout)
    assert set(made) >= {"id", "key", "tenant", "role"} and made["tenant"] == tenant and made["role"] == role
    return made


def api_key(http: httpx.Client, tenant: str, role: str, expires_days: float | None = None) -> dict:
    answer = http.post("/v1/keys", json={"tenant": tenant, "role": role, "expires_days": expires_days},
                       headers=key_header(ADMIN))
    assert answer.status_code == 201, answer.text
    return answer.json()


@pytest.fixture(scope="module")
def world(server, bundle):
    """Tenants north and south, each with a planner and a viewer; north has a region and a done plan."""
    with server.client() as http:
        keys = {"north_planner": api_key(http, "north", "planner")["key"],
                "north_viewer": cli_key(server, "north", "viewer")["key"],
                "south_planner": api_key(http, "south", "planner")["key"],
                "south_viewer": api_key(http, "south", "viewer")["key"]}
        content = zip_folder(bundle)
        region = http.post("/v1/regions", files={"file": ("north.zip", content)},
                           headers=key_header(keys["north_planner"]))
        assert region.status_code == 201, region.text
        region_id = region.json()["region_id"]
        plan = http.post("/v1/plans", json={"region_id": region_id, "params": {"time_limit_s": 2}},
                         headers=key_header(keys["north_planner"]))
        assert plan.status_code == 202, plan.text
        http.headers.update(key_header(keys["north_viewer"]))
        done = wait_for(http, plan.json()["plan_id"])
        assert done["status"] == "done" and done["tenant"] == "north", done
        # a teacher with a route (so that their route document exists), their school and municipality
        teacher = http.get(f"/v1/plans/{done['plan_id']}/assignments").json()["assignments"][0]["teacher_id"]
        teachers = pd.read_csv(bundle / "teachers.csv", dtype=str)
        schools = pd.read_csv(bundle / "schools.csv", dtype=str)
        school = teachers.set_index("teacher_id").at[teacher, "school_id"]
        municipality = schools.set_index("school_id").at[school, "municipality_id"]
        nation_content = zip_tree(random_nation(3, server.directory / "nation", regions=2, teachers=4))
        nation = http.post("/v1/nations", files={"file": ("north-nation.zip", nation_content)},
                           headers=key_header(keys["north_planner"]))
        assert nation.status_code == 201, nation.text
    return {"keys": keys, "region_id": region_id, "plan_id": done["plan_id"], "teacher_id": teacher,
            "school_id": school, "municipality_id": municipality, "content": content,
            "nation_id": nation.json()["nation_id"], "nation_content": nation_content}


# ------------------------------------------------------------------------------------------------
# every endpoint, from the server's own OpenAPI
# ------------------------------------------------------------------------------------------------

OPEN = {"/healthz", "/v1/template.xlsx"}  # no personal data: asked without a key


def sample_body(method: str, path: str, world: dict) -> dict:
    """What a request needs beyond its path to get past validation (so a 404 comes from the lookup)."""
    if method == "get" or method == "delete":
        return {}
    bodies = {
        "/v1/regions": {"files": {"file": ("r.zip", world["content"])}},
        "/v1/nations": {"files": {"file": ("n.zip", world["nation_content"])}},
        "/v1/nations/{nation_id}/plans": {"json": {"params": {"time_limit_s": 1}}},
        "/v1/plans": {"json": {"region_id": world["region_id"], "params": {"time_limit_s": 1}}},
        "/v1/plans/{plan_id}/replan": {"json": {"changes": {}, "time_limit_s": 1}},
        "/v1/plans/{plan_id}/sweep": {"json": {"factors": "1x,2x", "time_limit_s": 1}},
        "/v1/plans/{plan_id}/documents": {"json": {"pdf": False}},
        "/v1/plans/{plan_id}/fit": {"json": {"teacher": {"teacher_id": "NEW", "school_id": world["school_id"]}}},
        "/v1/plans/{plan_id}/registry/push": {},
        "/v1/regions/{region_id}/registry/import": {"files": {"export": ("export.json", b"{}")}},
        "/v1/keys": {"json": {"tenant": "north", "role": "viewer"}},
        "/v1/plans/{plan_id}/decisions": {"files": {"file": ("plan.xlsx", b"not read before the plan is found")}},
    }
    assert path in bodies, f"{method.upper()} {path}: a new endpoint: add a sample body to the tenant matrix"
    return bodies[path]


def endpoints(http: httpx.Client) -> list[tuple[str, str]]:
    schema = http.get("/openapi.json").json()
    found = [(method, path) for path, item in schema["paths"].items() for method in item
             if method in ("get", "post", "put", "patch", "delete") and path not in OPEN]
    assert len(found) >= 25, found
    return found


def fill(path: str, world: dict, ids: dict | None = None) -> str:
    values = {"region_id": world["region_id"], "plan_id": world["plan_id"], "teacher_id": world["teacher_id"],
              "school_id": world["school_id"], "municipality_id": world["municipality_id"],
              "name": "assignments.csv", "key_id": "nokey", "nation_id": world["nation_id"], **(ids or {})}
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


def test_another_tenants_objects_are_404_like_missing_ones(server, world):
    keys = world["keys"]
    with server.client() as http:
        checked = 0
        for method, path in endpoints(http):
            if "{region_id}" not in path and "{plan_id}" not in path and "{nation_id}" not in path:
                continue
            body = sample_body(method, path, world)
            url = fill(path, world)
            for key in (keys["south_planner"], keys["south_viewer"]):
                answer = http.request(method.upper(), url, headers=key_header(key), **body)
                if method != "get" and key == keys["south_viewer"]:
                    assert answer.status_code in (403, 404), (method, path, answer.status_code)
                    continue
                assert answer.status_code == 404, (method, path, answer.status_code, answer.text[:300])
                missing = http.request(method.upper(), fill(path, world, {"region_id": UNKNOWN_ID,
                                                                          "plan_id": UNKNOWN_ID,
                                                                          "nation_id": UNKNOWN_ID}),
                                       headers=key_header(key), **body)
                assert missing.status_code == 404 and missing.json() == answer.json(), (path, missing.text)
                checked += 1
            if method == "get":  # the owner does see it (the 404 above is the tenant's, not the id's)
                own = http.get(url, headers=key_header(keys["north_viewer"]))
                assert own.status_code != 404 or path.endswith(("/replan", "/sweep", "/documents.zip")), \
                    (path, own.text[:300])
        assert checked >= 40, checked
        # lists hold only the tenant's own objects; an admin sees every tenant's
        south = key_header(keys["south_planner"])
        assert world["region_id"] not in {r["region_id"] for r in http.get("/v1/regions", headers=south).json()}
        assert world["plan_id"] not in {p["plan_id"] for p in http.get("/v1/plans", headers=south).json()}
        assert http.get("/v1/plans", params={"region_id": world["region_id"]}, headers=south).json() == []
        assert world["region_id"] in {r["region_id"] for r in http.get("/v1/regions", headers=key_header(ADMIN)).json()}
        assert http.get("/v1/nations", headers=south).json() == []
        assert world["nation_id"] in {n["nation_id"] for n in http.get("/v1/nations", headers=key_header(ADMIN)).json()}
        # the key of MARSHRUT_API_KEYS with a tenant is that tenant's; one without is the default tenant's
        assert http.get(f"/v1/plans/{world['plan_id']}", headers=key_header(ENV_PLANNER)).status_code == 200
        assert http.get(f"/v1/plans/{world['plan_id']}", headers=key_header(ENV_VIEWER)).status_code == 404


def test_a_viewer_may_not_write_and_only_an_admin_manages_keys(server, world):
    keys = world["keys"]
    with server.client() as http:
        writes = [(m, p) for m, p in endpoints(http) if m != "get" and not p.endswith("/fit")]
        assert len(writes) >= 9, writes
        for method, path in writes:
            answer = http.request(method.upper(), fill(path, world), headers=key_header(keys["north_viewer"]),
                                  **sample_body(method, path, world))
            assert answer.status_code == 403, (method, path, answer.status_code, answer.text[:300])
        for method, path in endpoints(http):
            if path.startswith("/v1/keys") or path == "/v1/audit":
                answer = http.request(method.upper(), fill(path, world), headers=key_header(keys["north_planner"]),
                                      **sample_body(method, path, world))
                assert answer.status_code == 403, (method, path, answer.status_code)
        # the region and plan are still there
        assert http.get(f"/v1/plans/{world['plan_id']}", headers=key_header(keys["north_viewer"])).status_code == 200


def test_no_key_off_loopback_unknown_revoked_and_expired_keys_are_401(server, world):
    with server.client() as http:
        assert http.get("/healthz").status_code == 200
        for method, path in endpoints(http):
            answer = http.request(method.upper(), fill(path, world), **sample_body(method, path, world))
            assert answer.status_code == 401, (method, path, answer.status_code)
            assert http.request(method.upper(), fill(path, world), headers=key_header("mr_not-a-key"),
                                **sample_body(method, path, world)).status_code == 401
        revoked = api_key(http, "north", "viewer")
        assert http.get("/v1/regions", headers=key_header(revoked["key"])).status_code == 200
        assert http.delete(f"/v1/keys/{revoked['id']}", headers=key_header(ADMIN)).status_code == 204
        answer = http.get("/v1/regions", headers=key_header(revoked["key"]))
        assert answer.status_code == 401 and "revoked" in answer.text
        assert http.get("/v1/regions", headers={"Authorization": f"Bearer {revoked['key']}"}).status_code == 401
        expired = api_key(http, "north", "viewer", expires_days=0)
        assert http.get("/v1/regions", headers=key_header(expired["key"])).status_code == 401
        # a decimal number of days (about 13 s) from the command line: good now, refused once it passes
        soon = cli_key(server, "north", "viewer", "--expires-days", "0.00015")
        assert http.get("/v1/regions", headers=key_header(soon["key"])).status_code == 200
        expires = dt.datetime.fromisoformat(soon["expires_at"].removesuffix("Z"))
        time.sleep(max(0.0, (expires - dt.datetime.now(dt.UTC).replace(tzinfo=None)).total_seconds()) + 0.5)
        answer = http.get("/v1/regions", headers=key_header(soon["key"]))
        assert answer.status_code == 401 and "expired" in answer.text
        listed = {k["id"]: k for k in http.get("/v1/keys", headers=key_header(ADMIN)).json()}
        assert listed[revoked["id"]]["state"] == "revoked" and listed[soon["id"]]["state"] == "expired"
        assert all("key" not in k and "key_hash" not in k for k in listed.values())
        # only hashes are stored
        stored = "\n".join(str(row) for row in rows_of(server.database_url, "api_keys"))
        assert revoked["key"] not in stored and soon["key"] not in stored


# ------------------------------------------------------------------------------------------------
# audit, deletion
# ------------------------------------------------------------------------------------------------

def rows_of(url: str, table: str | None = None) -> list[tuple]:
    """Every row of `table` (or of every table but the audit's) read straight from the database."""
    engine = create_engine(url.replace("postgresql+psycopg", "postgresql+psycopg"))
    try:
        names = [table] if table else [n for n in inspect(engine).get_table_names() if n != "audit_log"]
        with engine.connect() as connection:
            return [(name, *row) for name in names for row in connection.execute(text(f'SELECT * FROM "{name}"'))]
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def east_bundle(tmp_path_factory) -> Path:
    """A bundle no other test uploads: its bytes in the database are this test's region's."""
    return random_bundle(17, tmp_path_factory.mktemp("tenants-east") / "bundle", teachers=20)


def test_audit_has_one_record_per_action_and_deletion_leaves_nothing(server, east_bundle):
    bundle = east_bundle
    with server.client() as http:
        since = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)).replace(tzinfo=None).isoformat()
        admin = key_header(ADMIN)
        made = api_key(http, "east", "planner")
        east = key_header(made["key"])
        content = zip_folder(bundle)
        region = http.post("/v1/regions", files={"file": ("east.zip", content)}, headers=east).json()["region_id"]
        plan = http.post("/v1/plans", json={"region_id": region, "params": {"time_limit_s": 2}}, headers=east)
        plan_id = plan.json()["plan_id"]
        http.headers.update(east)
        assert wait_for(http, plan_id)["status"] == "done"
        teacher = pd.read_csv(bundle / "teachers.csv", dtype=str)["teacher_id"].iloc[0]
        assert http.get(f"/v1/plans/{plan_id}/assignments", params={"format": "csv"}).status_code == 200
        assert http.get(f"/v1/plans/{plan_id}/routes/{teacher}").status_code == 200
        assert http.get(f"/v1/plans/{plan_id}/explain").status_code == 200
        assert http.get(f"/v1/plans/{plan_id}/export.xlsx").status_code == 200
        assert http.get(f"/v1/plans/{plan_id}/summary").status_code == 200  # not personal: not audited
        # the bundle is in the database, byte for byte (so the check after the deletion can fail)
        probe = content[len(content) // 2:len(content) // 2 + 48]
        if server.backend == "sqlite":
            assert probe in sqlite_bytes(server)
        assert any(plan_id in str(row) for row in rows_of(server.database_url))
        assert http.delete(f"/v1/regions/{region}").status_code == 204
        assert http.get(f"/v1/regions/{region}").status_code == 404
        assert http.get(f"/v1/plans/{plan_id}").status_code == 404
        assert http.delete(f"/v1/keys/{made['id']}", headers=admin).status_code == 204
        http.headers.pop("X-API-Key")

        records = http.get("/v1/audit", params={"tenant": "east", "since": since}, headers=admin).json()
        actions = [(r["action"], r["object_id"], (r["detail"] or {}).get("what")) for r in records]
        assert actions == [("key.create", made["id"], None), ("region.upload", region, None),
                           ("plan.create", plan_id, None), ("plan.export", plan_id, "assignments"),
                           ("plan.export", plan_id, "route"), ("plan.export", plan_id, "explain"),
                           ("plan.export", plan_id, "plan.xlsx"), ("region.delete", region, None),
                           ("key.revoke", made["id"], None)], actions
        assert all(r["outcome"] == "ok" and r["tenant"] == "east" and r["address"] for r in records)
        assert {r["key_id"] for r in records[1:-1]} == {made["id"]}
        assert records[-2]["detail"]["plans"] == 1 and records[-2]["detail"]["plan_files"] >= 5
        # filters: by time (nothing before `since`, nothing after now), by tenant
        later = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)).replace(tzinfo=None).isoformat()
        assert http.get("/v1/audit", params={"tenant": "east", "since": later}, headers=admin).json() == []
        assert len(http.get("/v1/audit", params={"tenant": "east", "until": later}, headers=admin).json()) >= 9
        assert http.get("/v1/audit", params={"tenant": "nobody"}, headers=admin).json() == []
        # never a score: the teacher's scores as the bundle has them do not appear in the audit
        scores = pd.read_csv(bundle / "diagnostics.csv", dtype=str) if (bundle / "diagnostics.csv").exists() else None
        audit_text = json.dumps(http.get("/v1/audit", headers=admin).json())
        assert "score" not in audit_text.lower()
        if scores is not None and "score" in scores:
            assert not any(f'"{s}"' in audit_text for s in scores["score"].unique() if len(s) > 3)

    # nothing of the region is left: no row of any table (the audit's aside) names it or its plan,
    # and (SQLite) the bundle's bytes are gone from the database file and its log
    leftovers = [row[:3] for row in rows_of(server.database_url) if region in str(row) or plan_id in str(row)]
    assert leftovers == []
    if server.backend == "sqlite":
        assert probe not in sqlite_bytes(server)
    # the audit is append-only, in the database itself
    engine = create_engine(server.database_url)
    try:
        with pytest.raises(Exception, match="append-only"):
            with engine.begin() as connection:
                connection.execute(text("DELETE FROM audit_log"))
        with pytest.raises(Exception, match="append-only"):
            with engine.begin() as connection:
                connection.execute(text("UPDATE audit_log SET outcome = 'x'"))
    finally:
        engine.dispose()


def sqlite_bytes(server) -> bytes:
    path = Path(server.database_url.removeprefix("sqlite:///"))
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())


# ------------------------------------------------------------------------------------------------
# jobs: re-plans and sweeps in the queue, a tenant's limit
# ------------------------------------------------------------------------------------------------

def test_jobs_are_limited_per_tenant(server, slow_bundle, world):
    with server.client() as http:
        west = key_header(api_key(http, "west", "planner")["key"])
        http.headers.update(west)
        region = http.post("/v1/regions", files={"file": ("w.zip", zip_folder(slow_bundle))}).json()["region_id"]
        jobs = [http.post("/v1/plans", json={"region_id": region, "params": {"time_limit_s": 60}}) for _ in range(3)]
        assert [j.status_code for j in jobs] == [202, 202, 202]
        over = http.post("/v1/plans", json={"region_id": region, "params": {"time_limit_s": 60}})
        assert over.status_code == 429 and int(over.headers["Retry-After"]) >= 1, over.text
        # a sweep of another tenant's plan goes on: the limit is the tenant's
        north = key_header(world["keys"]["north_planner"])
        sweep = http.post(f"/v1/plans/{world['plan_id']}/sweep", json={"factors": "1x", "time_limit_s": 1},
                          headers=north)
        assert sweep.status_code == 202, sweep.text
        # a queued job is cancelled at once; then there is room again
        first = jobs[0].json()["plan_id"]
        assert http.delete(f"/v1/plans/{first}").json()["status"] == "cancelled"
        again = http.post("/v1/plans", json={"region_id": region, "params": {"time_limit_s": 60}})
        assert again.status_code == 202
        assert http.delete(f"/v1/regions/{region}").status_code == 204  # stops them all
        http.headers.update(north)
        done = wait_for(http, sweep.json()["plan_id"], timeout=120)
        assert done["status"] == "done" and done["kind"] == "sweep", done
        assert len(http.get(f"/v1/plans/{done['plan_id']}/sweep").json()["points"]) == 1


# ------------------------------------------------------------------------------------------------
# schemathesis with keys
# ------------------------------------------------------------------------------------------------

def test_schemathesis_with_keys_finds_no_server_error(server, world, tmp_path):
    st = shutil.which("st", path=str(Path(sys.executable).parent)) or shutil.which("schemathesis")
    assert st, "schemathesis is not installed"
    with server.client() as http:
        fuzz = api_key(http, "fuzz", "planner")["key"]
        http.post("/v1/regions", files={"file": ("f.zip", world["content"])}, headers=key_header(fuzz))
    for key in (fuzz, world["keys"]["south_viewer"]):
        result = subprocess.run(
            [st, "run", f"{server.url}/openapi.json", "--checks", "not_a_server_error", "--max-examples", "10",
             "--phases", "examples,coverage,fuzzing", "--seed", "2", "--workers", "1", "--no-color",
             "--header", f"X-API-Key: {key}", "--exclude-tag", "registry",
             "--generation-database", "none", "--request-timeout", "30", "--suppress-health-check", "all"],
            capture_output=True, text=True, timeout=300, cwd=tmp_path)
        errors = "\n".join(line for line in server.log().splitlines() if " 500 " in line or "unhandled" in line)
        assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:] + errors[-3000:]
    assert server.process.poll() is None


# ------------------------------------------------------------------------------------------------
# rates (in memory, the same on either database: SQLite only)
# ------------------------------------------------------------------------------------------------

def test_a_client_over_its_rate_gets_429_with_retry_after(tmp_path):
    env = {"MARSHRUT_API_KEYS": "rate-key:viewer", "MARSHRUT_RATE_PER_SECOND": "1", "MARSHRUT_RATE_BURST": "3"}
    with Server(f"sqlite:///{tmp_path}/rate.sqlite", env=env, log_dir=tmp_path) as server, server.client() as http:
        codes = [http.get("/v1/regions", headers=key_header("rate-key")).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429], codes
        limited = http.get("/v1/regions", headers=key_header("rate-key"))
        assert limited.status_code == 429 and 1 <= int(limited.headers["Retry-After"]) <= 2
        time.sleep(int(limited.headers["Retry-After"]))
        assert http.get("/v1/regions", headers=key_header("rate-key")).status_code == 200
        # the local operator (loopback, no key) is not limited
        assert all(http.get("/v1/regions").status_code == 200 for _ in range(10))


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_database_from_before_tenants_is_upgraded(tmp_path, bundle, backend, request):
    """A database made before tenants (no tenant, kind, job columns; no keys, no audit) is upgraded
    in place when the server starts: its regions and plans become the `default` tenant's."""
    url = f"sqlite:///{tmp_path}/old.sqlite" if backend == "sqlite" else \
        request.getfixturevalue("postgres").create_database()
    with Server(url, log_dir=tmp_path) as server, server.client() as http:
        region = http.post("/v1/regions", files={"file": ("old.zip", zip_folder(bundle))}).json()["region_id"]
        plan = http.post("/v1/plans", json={"region_id": region, "params": {"time_limit_s": 1}}).json()["plan_id"]
        assert wait_for(http, plan)["status"] == "done"
    engine = create_engine(url)
    with engine.begin() as connection:  # back to the old schema
        for statement in ("DROP TABLE api_keys", "DROP TABLE audit_log", "DROP INDEX ix_regions_tenant",
                          "DROP INDEX ix_plans_tenant", "ALTER TABLE regions DROP COLUMN tenant",
                          "ALTER TABLE plans DROP COLUMN tenant", "ALTER TABLE plans DROP COLUMN kind",
                          "ALTER TABLE plans DROP COLUMN job"):
            connection.execute(text(statement))
    assert "tenant" not in {c["name"] for c in inspect(engine).get_columns("regions")}
    engine.dispose()
    env = {"MARSHRUT_API_KEYS": "v:viewer,s:viewer:south", "MARSHRUT_REQUIRE_API_KEYS": "true"}
    with Server(url, env=env, log_dir=tmp_path) as server, server.client() as http:
        mine = http.get(f"/v1/plans/{plan}", headers=key_header("v"))
        assert mine.status_code == 200 and mine.json()["tenant"] == "default" and mine.json()["kind"] == "plan"
        assert http.get(f"/v1/plans/{plan}/assignments", headers=key_header("v")).status_code == 200
        assert http.get(f"/v1/regions/{region}", headers=key_header("s")).status_code == 404
        assert http.get("/v1/regions", headers=key_header("s")).json() == []


def test_a_sweep_is_a_job_that_survives_a_crash_and_can_be_cancelled(tmp_path, bundle):
    url = f"sqlite:///{tmp_path}/jobs.sqlite"
    env = {"MARSHRUT_MAX_CONCURRENT_SOLVES": "1"}
    with Server(url, env=env, log_dir=tmp_path) as first, first.client() as http:
        region = http.post("/v1/regions", files={"file": ("j.zip", zip_folder(bundle))}).json()["region_id"]
        plan = http.post("/v1/plans", json={"region_id": region, "params": {"time_limit_s": 1}}).json()["plan_id"]
        assert wait_for(http, plan)["status"] == "done"
        sweep = http.post(f"/v1/plans/{plan}/sweep", json={"factors": "0.5x,1x,1.5x", "time_limit_s": 2})
        assert sweep.status_code == 202, sweep.text
        job = sweep.json()["plan_id"]
        running = wait_for(http, job, statuses=("running",), timeout=60)
        assert running["kind"] == "sweep"
        first.kill9()
    with Server(url, env=env, log_dir=tmp_path) as second, second.client() as http:
        done = wait_for(http, job, timeout=180)
        assert done["status"] == "done" and done["attempt"] == 2, done
        points = http.get(f"/v1/plans/{job}/sweep").json()["points"]
        assert [p["factor"] for p in points] == [0.5, 1.0, 1.5]
        # a queued or running job is cancelled at once; its result is never written
        other = http.post(f"/v1/plans/{plan}/sweep", json={"factors": "1x,2x", "time_limit_s": 5}).json()["plan_id"]
        assert http.delete(f"/v1/plans/{other}").json()["status"] == "cancelled"
        time.sleep(1.0)
        assert http.get(f"/v1/plans/{other}").json()["status"] == "cancelled"
        assert http.get(f"/v1/plans/{other}/sweep").status_code == 409
