"""A nation through the HTTP API (SPEC §7 as docs/nation.md and docs/api.md describe it): the real
server (uvicorn) on SQLite and on a real PostgreSQL, httpx, nations made by tests/nation_oracle.py
and by the `russia` preset; plans checked by the independent checker and against an exact MILP.
"""

from __future__ import annotations

import io
import json
import shutil
import time
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from api_server import Server, wait_for, zip_folder, zip_members, zip_tree
from nation_oracle import check_nation_plan, nation_exact_optimum, random_nation

from marshrut.engine.nation import load_nation, nation_params
from marshrut.engine.nation_plan import write_nation_plan
from marshrut.engine.nation_solve import solve_nation

KEYS = {"north": "north-planner-key", "north_viewer": "north-viewer-key", "south": "south-planner-key",
        "admin": "nation-admin-key"}
SERVER_ENV = {"MARSHRUT_API_KEYS": f"{KEYS['north']}:planner:north,{KEYS['north_viewer']}:viewer:north,"
                                   f"{KEYS['south']}:planner:south,{KEYS['admin']}:admin",
              "MARSHRUT_REQUIRE_API_KEYS": "true", "MARSHRUT_MAX_CONCURRENT_SOLVES": "1",
              "MARSHRUT_MAX_JOBS_PER_TENANT": "2", "MARSHRUT_MAX_TIME_LIMIT_S": "600",
              "MARSHRUT_RATE_PER_SECOND": "1000", "MARSHRUT_RATE_BURST": "1000"}
UNKNOWN_ID = "0" * 32
PARAMS = {"time_limit_s": 60}


def as_(who: str) -> dict:
    return {"X-API-Key": KEYS[who]}


def _edit(folder: Path, file: str, edit) -> None:
    frame = pd.read_csv(folder / file, dtype=str, keep_default_na=False)
    edit(frame).to_csv(folder / file, index=False)


@pytest.fixture(scope="module")
def nation_dir(tmp_path_factory) -> Path:
    return random_nation(4, tmp_path_factory.mktemp("nation-api") / "n", regions=3, teachers=6)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request, tmp_path_factory):
    directory = tmp_path_factory.mktemp(f"nation-api-{request.param}")
    url = f"sqlite:///{directory}/marshrut.sqlite" if request.param == "sqlite" else \
        request.getfixturevalue("postgres").create_database()
    with Server(url, env=SERVER_ENV, log_dir=directory) as running:
        running.backend = request.param
        running.directory = directory
        yield running


@pytest.fixture(scope="module")
def nation(server, nation_dir) -> dict:
    with server.client(headers=as_("north")) as http:
        answer = http.post("/v1/nations", files={"file": ("siberia.zip", zip_tree(nation_dir))})
    assert answer.status_code == 201, answer.text
    return answer.json()


@pytest.fixture(scope="module")
def engine_plan(nation_dir, tmp_path_factory) -> dict:
    """What the engine (the CLI's own call, in this process) gives for the same nation and parameters."""
    data = load_nation(nation_dir)
    params = nation_params(PARAMS, data.region_ids)
    return write_nation_plan(data, params, solve_nation(data, params), tmp_path_factory.mktemp("engine") / "out")


@pytest.fixture(scope="module")
def done_plan(server, nation) -> dict:
    with server.client(headers=as_("north")) as http:
        answer = http.post(f"/v1/nations/{nation['nation_id']}/plans", json={"params": PARAMS})
        assert answer.status_code == 202, answer.text
        assert answer.json()["nation_id"] == nation["nation_id"] and answer.json()["region_id"] is None
        plan = wait_for(http, answer.json()["plan_id"], timeout=300)
    assert plan["status"] == "done", plan
    return plan


# ------------------------------------------------------------------------------------------------
# upload, validation
# ------------------------------------------------------------------------------------------------

def test_a_nation_is_uploaded_listed_and_read(server, nation, nation_dir):
    assert nation["regions"] == 3 and nation["teachers"] == 18 and nation["plans"] == 0
    assert [r["region_id"] for r in nation["region_list"]] == ["R01", "R02", "R03"]
    assert nation["federal_sessions"] == len(pd.read_csv(nation_dir / "federal_program_sessions.csv"))
    with server.client(headers=as_("north_viewer")) as http:
        assert http.get(f"/v1/nations/{nation['nation_id']}").json()["name"] == nation["name"]
        assert nation["nation_id"] in {n["nation_id"] for n in http.get("/v1/nations").json()}
        # the folder itself at the top of the archive reads the same
        again = http.post("/v1/nations", files={"file": ("flat.zip", zip_tree(nation_dir, top=""))},
                          headers=as_("north"))
        assert again.status_code == 201 and again.json()["teachers"] == 18, again.text
        assert http.delete(f"/v1/nations/{again.json()['nation_id']}", headers=as_("north")).status_code == 204


def test_a_bad_nation_is_422_with_every_problem_located_and_nothing_stored(server, nation_dir, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(nation_dir, bad)
    sessions = pd.read_csv(bad / "federal_program_sessions.csv", dtype=str, keep_default_na=False)
    offline = int(sessions.index[sessions["region_id"] != ""][0])

    def unknown_region(frame):
        frame.loc[offline, "region_id"] = "R99"
        return frame

    def bad_voucher(frame):
        frame.loc[1, "voucher_rub"] = "-5"
        return frame

    _edit(bad, "federal_program_sessions.csv", unknown_region)
    _edit(bad / "regions" / "R02", "teachers.csv", bad_voucher)
    _edit(bad, "federal_budget.csv", lambda f: f[f["scope"] != "federal"])
    with server.client(headers=as_("north")) as http:
        before = http.get("/v1/nations", params={"limit": 1000}).json()
        answer = http.post("/v1/nations", files={"file": ("bad.zip", zip_tree(bad))})
        assert answer.status_code == 422, answer.text
        body = answer.json()
        found = {(p["file"], p["code"], p["row"], p["column"]) for p in body["problems"]}
        assert {("R02/teachers.csv", "negative", 3, "voucher_rub"),
                ("federal_program_sessions.csv", "unknown_id", offline + 2, "region_id"),
                ("federal_budget.csv", "missing_federal_budget", None, "scope")} <= found, sorted(found)
        assert body["total"] == len(body["problems"]) >= 3 and body["detail"]
        # not a .zip, a damaged one, a region's bundle: each a 422 saying so
        for name, content, code in (("nation.xlsx", b"PK\x03\x04 not a workbook", "unsupported_format"),
                                    ("nation.zip", b"PK\x03\x04 damaged", "bad_archive"),
                                    ("region.zip", zip_folder(nation_dir / "regions" / "R01"), "missing_file")):
            answer = http.post("/v1/nations", files={"file": (name, content)})
            assert answer.status_code == 422, (name, answer.text)
            assert code in {p["code"] for p in answer.json()["problems"]}, (name, answer.text)
        # an archive of more files than any nation has is refused before it is unpacked
        many = http.post("/v1/nations", files={"file": ("many.zip", zip_members({f"f{i}": b"" for i in range(20_001)}))})
        assert many.status_code == 413 and many.json()["problems"][0]["code"] == "archive_too_large", many.text
        assert http.get("/v1/nations", params={"limit": 1000}).json() == before
        audit = http.get("/v1/audit", params={"tenant": "north"}, headers=as_("admin")).json()
        assert [r["outcome"] for r in audit if r["action"] == "nation.upload"][-5:] == ["422"] * 4 + ["413"]


# ------------------------------------------------------------------------------------------------
# the plan
# ------------------------------------------------------------------------------------------------

def test_a_nations_plan_obeys_the_rules_and_equals_the_engines(server, nation, nation_dir, done_plan, engine_plan,
                                                                tmp_path):
    assert done_plan["kind"] == "nation" and done_plan["nation_id"] == nation["nation_id"]
    assert done_plan["region_id"] is None and done_plan["tenant"] == "north"
    progress = done_plan["progress"]
    assert progress["round"] >= 1 and [r["region_id"] for r in progress["regions"]] == ["R01", "R02", "R03"]
    assert all(r["rounds"] >= 1 and r["status"] in ("OPTIMAL", "FEASIBLE") for r in progress["regions"])
    with server.client(headers=as_("north_viewer")) as http:
        summary = http.get(f"/v1/plans/{done_plan['plan_id']}/summary").json()
        assert summary == done_plan["summary"]
        archive = http.get(f"/v1/plans/{done_plan['plan_id']}/nation.zip")
        assert archive.status_code == 200 and archive.headers["content-type"] == "application/zip"
        with zipfile.ZipFile(io.BytesIO(archive.content)) as plan_zip:
            plan_zip.extractall(tmp_path / "plan")
            names = set(plan_zip.namelist())
        assert {"summary.json", *(f"regions/{r}/{f}" for r in ("R01", "R02", "R03")
                                  for f in ("assignments.csv", "routes.csv", "clusters.csv", "summary.json",
                                            "plan.xlsx"))} <= names
        # a region's file alone is the same bytes as in the folder
        one = http.get(f"/v1/plans/{done_plan['plan_id']}/regions/R02/files/assignments.csv")
        assert one.status_code == 200 and one.content == (tmp_path / "plan/regions/R02/assignments.csv").read_bytes()
        assert http.get(f"/v1/plans/{done_plan['plan_id']}/regions/R77/files/assignments.csv").status_code == 404
        assert http.get(f"/v1/plans/{done_plan['plan_id']}/regions/R02/files/secret.txt").status_code == 404
        # the region endpoints read a region's files: a nation's plan is not one (409 saying where to look)
        region_only = http.get(f"/v1/plans/{done_plan['plan_id']}/assignments")
        assert region_only.status_code == 409 and "nation.zip" in region_only.json()["detail"]
        assert http.get(f"/v1/nations/{nation['nation_id']}").json()["plans"] >= 1
    assert json.loads((tmp_path / "plan" / "summary.json").read_text(encoding="utf-8")) == summary
    # every rule of every region and across them, by the independent checker
    assert check_nation_plan(nation_dir, PARAMS, tmp_path / "plan") == []
    # optimal, as the exact MILP over the whole nation says, and the engine's own objective
    optimum = nation_exact_optimum(nation_dir, PARAMS)
    assert summary["objective"] == pytest.approx(optimum, abs=1e-6)
    assert summary["objective"] == pytest.approx(engine_plan["objective"], abs=1e-6)
    assert summary["bound"] >= optimum - 1e-7
    assert sum(r["objective"] for r in summary["regions"]) == pytest.approx(summary["objective"], abs=1e-6)


def test_params_of_a_nation_are_checked_before_queueing(server, nation, nation_dir):
    url = f"/v1/nations/{nation['nation_id']}/plans"
    with server.client(headers=as_("north")) as http:
        jobs = len(http.get("/v1/plans", params={"limit": 1000}).json())
        pin = {"teacher_id": "nobody", "kind": "program", "resource_id": "FS1-1"}
        cases = [({"pinned": [pin]}, "params.pinned.region_id", "missing_value"),
                 ({"pinned": [{**pin, "region_id": "R42"}]}, "params.pinned.region_id", "unknown_id"),
                 ({"forbidden": [{**pin, "region_id": "R01"}]}, "params.forbidden.0.teacher_id", "unknown_id"),
                 ({"time_limit_s": 10_000}, "params.time_limit_s", "too_large"),
                 ({"pinned": [{**pin, "region_id": "R42"}], "workers": "many"}, "params.workers", None),
                 ({"deficit_threshold": "high"}, "params.deficit_threshold", None)]
        for params, column, code in cases:
            answer = http.post(url, json={"params": params})
            assert answer.status_code == 422, (params, answer.text)
            problems = answer.json()["problems"]
            assert any(p["column"] == column and code in (None, p["code"]) for p in problems), (params, problems)
        # every problem at once: the region of an entry and the model's own fields in one answer
        answer = http.post(url, json={"params": {"pinned": [{**pin, "region_id": "R42"}], "workers": "many"}})
        assert {p["column"] for p in answer.json()["problems"]} >= {"params.pinned.region_id", "params.workers"}, \
            answer.text
        # an entry is named by its place in the order given (the entries of regions interleaved)
        good = {}
        for region_id in ("R01", "R02"):
            folder = nation_dir / "regions" / region_id
            good[region_id] = {"region_id": region_id, "kind": "mentor",
                               "teacher_id": str(pd.read_csv(folder / "teachers.csv", dtype=str)["teacher_id"][0]),
                               "resource_id": str(pd.read_csv(folder / "mentors.csv", dtype=str)["mentor_id"][0])}
        pinned = [good["R01"], good["R02"], {**good["R01"], "teacher_id": "nobody"}]
        answer = http.post(url, json={"params": {"pinned": pinned}})
        assert answer.status_code == 422, answer.text
        assert [(p["column"], p["value"]) for p in answer.json()["problems"]] == \
            [("params.pinned.2.teacher_id", "nobody")]
        assert len(http.get("/v1/plans", params={"limit": 1000}).json()) == jobs


def test_a_nations_entries_keep_the_order_given_and_split_by_region(nation_dir):
    nation = load_nation(nation_dir)
    refs = [{"region_id": region_id, "teacher_id": f"T{i}", "kind": "mentor", "resource_id": f"M{i}"}
            for i, region_id in enumerate(("R02", "R01", "R02", "R01", "R01"))]
    params = nation_params({"pinned": refs, "forbidden": refs[:1]}, nation.region_ids)
    assert [(region_id, ref.teacher_id) for region_id, ref in params.entries("pinned")] == \
        [(r["region_id"], r["teacher_id"]) for r in refs]
    assert [ref.teacher_id for ref in params.for_region("R01").pinned] == ["T1", "T3", "T4"]
    assert [ref.teacher_id for ref in params.for_region("R02").forbidden] == ["T0"]
    assert params.for_region("R01").forbidden == []


# ------------------------------------------------------------------------------------------------
# tenants, roles, the queue, deletion
# ------------------------------------------------------------------------------------------------

def test_another_tenants_nation_and_plan_are_404_like_missing_ones(server, nation, done_plan):
    nation_id, plan_id = nation["nation_id"], done_plan["plan_id"]
    requests = [("GET", "/v1/nations/{n}", {}), ("DELETE", "/v1/nations/{n}", {}),
                ("POST", "/v1/nations/{n}/plans", {"json": {"params": {"time_limit_s": 1}}}),
                ("GET", "/v1/plans/{p}", {}), ("GET", "/v1/plans/{p}/summary", {}),
                ("GET", "/v1/plans/{p}/nation.zip", {}), ("GET", "/v1/plans/{p}/regions/R01/files/assignments.csv", {}),
                ("DELETE", "/v1/plans/{p}", {})]
    with server.client(headers=as_("south")) as http:
        for method, path, body in requests:
            theirs = http.request(method, path.format(n=nation_id, p=plan_id), **body)
            missing = http.request(method, path.format(n=UNKNOWN_ID, p=UNKNOWN_ID), **body)
            assert theirs.status_code == 404 and missing.status_code == 404, (method, path, theirs.text)
            assert theirs.json() == missing.json(), (path, theirs.text, missing.text)
        assert nation_id not in {n["nation_id"] for n in http.get("/v1/nations").json()}
        assert plan_id not in {p["plan_id"] for p in http.get("/v1/plans").json()}
    with server.client(headers=as_("north_viewer")) as http:  # a viewer reads, never writes
        assert http.get(f"/v1/plans/{plan_id}/nation.zip").status_code == 200
        for method, path, body in [("POST", "/v1/nations", {"files": {"file": ("n.zip", b"PK")}}),
                                   ("POST", f"/v1/nations/{nation_id}/plans", {"json": {"params": {}}}),
                                   ("DELETE", f"/v1/nations/{nation_id}", {}), ("DELETE", f"/v1/plans/{plan_id}", {})]:
            assert http.request(method, path, **body).status_code == 403, (method, path)
        assert http.get(f"/v1/nations/{nation_id}").status_code == 200
    with server.client(headers=as_("admin")) as http:  # an admin sees every tenant's
        assert nation_id in {n["nation_id"] for n in http.get("/v1/nations").json()}


@pytest.fixture(scope="module")
def russia(tmp_path_factory) -> tuple[Path, bytes]:
    """The `russia` preset at 0.2%: 85 regions, about 2,100 teachers; long enough to be caught running."""
    from marshrut.datasets.nation import generate_nation

    folder = generate_nation(tmp_path_factory.mktemp("russia") / "russia", scale=0.002, seed=1)
    return folder, zip_tree(folder)


def test_nation_plans_are_jobs_limited_cancelled_and_deleted_with_their_nation(server, russia):
    with server.client(headers=as_("north")) as http:
        made = http.post("/v1/nations", files={"file": ("russia.zip", russia[1])})
        assert made.status_code == 201 and made.json()["regions"] == 85, made.text
        made = made.json()["nation_id"]
        url = f"/v1/nations/{made}/plans"
        jobs = [http.post(url, json={"params": {"time_limit_s": 300}}) for _ in range(2)]
        assert [j.status_code for j in jobs] == [202, 202], [j.text for j in jobs]
        over = http.post(url, json={"params": {"time_limit_s": 300}})  # the tenant's limit is 2 jobs
        assert over.status_code == 429 and int(over.headers["Retry-After"]) >= 1, over.text
        first, second = (j.json()["plan_id"] for j in jobs)
        wait_for(http, first, statuses=("running",), timeout=60)
        cancelled = http.delete(f"/v1/plans/{first}").json()
        assert cancelled["status"] == "cancelled" and cancelled["kind"] == "nation"
        time.sleep(1.0)
        assert http.get(f"/v1/plans/{first}").json()["status"] == "cancelled"
        assert http.get(f"/v1/plans/{first}/nation.zip").status_code == 409
        # deleting the nation stops its running plan and removes its plans and their files
        wait_for(http, second, statuses=("running",), timeout=60)
        assert http.delete(f"/v1/nations/{made}").status_code == 204
        for gone in (f"/v1/nations/{made}", f"/v1/plans/{first}", f"/v1/plans/{second}"):
            assert http.get(gone).status_code == 404, gone
        assert made not in {n["nation_id"] for n in http.get("/v1/nations").json()}
        records = [r for r in http.get("/v1/audit", params={"tenant": "north"}, headers=as_("admin")).json()
                   if r["object_id"] in (made, first, second)]
        actions = [(r["action"], r["object_id"], r["outcome"]) for r in records]
        assert actions == [("nation.upload", made, "ok"), ("plan.create", first, "ok"), ("plan.create", second, "ok"),
                           ("plan.cancel", first, "ok"), ("nation.delete", made, "ok")], actions
        assert records[-1]["detail"]["plans"] == 2
    # no solver process of the deleted nation is left running
    time.sleep(1.0)
    with server.client(headers=as_("north")) as http:
        assert all(p["status"] not in ("queued", "running") for p in http.get("/v1/plans").json())


def test_the_exports_of_a_nations_plan_are_audited(server, done_plan):
    plan_id = done_plan["plan_id"]
    with server.client(headers=as_("north_viewer")) as http:
        assert http.get(f"/v1/plans/{plan_id}/nation.zip").status_code == 200
        assert http.get(f"/v1/plans/{plan_id}/regions/R03/files/routes.csv").status_code == 200
        records = http.get("/v1/audit", params={"tenant": "north"}, headers=as_("admin")).json()
    exports = [(r["action"], r["object_id"], r["detail"]) for r in records if r["object_id"] == plan_id]
    assert ("plan.export", plan_id, {"what": "nation.zip"}) in exports
    assert ("plan.export", plan_id, {"what": "routes.csv", "region_id": "R03"}) in exports
    assert not any("score" in json.dumps(r).lower() for r in records)


def test_a_nation_deletion_leaves_no_row_behind(server, nation, done_plan):
    from sqlalchemy import create_engine, inspect, text

    with server.client(headers=as_("north")) as http:
        assert http.delete(f"/v1/nations/{nation['nation_id']}").status_code == 204
        assert http.get(f"/v1/plans/{done_plan['plan_id']}").status_code == 404
    engine = create_engine(server.database_url)
    try:
        with engine.connect() as connection:
            names = [n for n in inspect(engine).get_table_names() if n != "audit_log"]
            rows = [(n, *row) for n in names for row in connection.execute(text(f'SELECT * FROM "{n}"'))]
    finally:
        engine.dispose()
    assert [row[:2] for row in rows if nation["nation_id"] in str(row) or done_plan["plan_id"] in str(row)] == []


# ------------------------------------------------------------------------------------------------
# a larger nation (the russia preset) survives a crash of its server mid-solve
# ------------------------------------------------------------------------------------------------

def test_a_russia_nation_plan_survives_a_server_crash(russia, tmp_path):
    folder, content = russia
    url = f"sqlite:///{tmp_path}/crash.sqlite"
    env = {**SERVER_ENV, "MARSHRUT_MAX_JOBS_PER_TENANT": "4"}
    with Server(url, env=env, log_dir=tmp_path) as first, first.client(headers=as_("north")) as http:
        made = http.post("/v1/nations", files={"file": ("russia.zip", content)})
        assert made.status_code == 201 and made.json()["regions"] == 85, made.text
        plan_id = http.post(f"/v1/nations/{made.json()['nation_id']}/plans",
                            json={"params": {"time_limit_s": 40}}).json()["plan_id"]
        deadline = time.monotonic() + 120
        while True:  # running, some regions priced: the crash comes mid-solve
            plan = http.get(f"/v1/plans/{plan_id}").json()
            priced = [r for r in (plan["progress"] or {}).get("regions") or [] if r["rounds"] >= 1]
            if plan["status"] == "running" and priced:
                break
            assert plan["status"] in ("queued", "running") and time.monotonic() < deadline, plan
            time.sleep(0.2)
        assert len(plan["progress"]["regions"]) == 85
        first.kill9()
    with Server(url, env=env, log_dir=tmp_path) as second, second.client(headers=as_("north")) as http:
        done = wait_for(http, plan_id, timeout=300)
        assert done["status"] == "done" and done["attempt"] == 2, done
        archive = http.get(f"/v1/plans/{plan_id}/nation.zip")
        with zipfile.ZipFile(io.BytesIO(archive.content)) as plan_zip:
            plan_zip.extractall(tmp_path / "plan")
    assert len(done["summary"]["regions"]) == 85
    assert check_nation_plan(folder, {"time_limit_s": 40}, tmp_path / "plan") == []


# ------------------------------------------------------------------------------------------------
# a database made before nations
# ------------------------------------------------------------------------------------------------

OLD_PLAN_COLUMNS = ("id, region_id, tenant, kind, job, params, status, attempt, owner, heartbeat_at, created_at, "
                    "started_at, finished_at, progress, summary, error")


def _back_to_before_nations(url: str) -> None:
    """The schema as it was: no nations table, no plans.nation_id, plans.region_id NOT NULL."""
    if url.startswith("sqlite"):
        import sqlite3

        connection = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        connection.executescript(f"""
            PRAGMA foreign_keys=OFF;
            BEGIN;
            CREATE TABLE plans_old (id VARCHAR(32) NOT NULL PRIMARY KEY,
                region_id VARCHAR(32) NOT NULL REFERENCES regions (id) ON DELETE CASCADE,
                tenant VARCHAR(100) DEFAULT 'default' NOT NULL, kind VARCHAR(16) DEFAULT 'plan' NOT NULL, job TEXT,
                params TEXT NOT NULL, status VARCHAR(16) NOT NULL, attempt INTEGER NOT NULL, owner VARCHAR(200),
                heartbeat_at DATETIME, created_at DATETIME NOT NULL, started_at DATETIME, finished_at DATETIME,
                progress TEXT, summary TEXT, error TEXT);
            INSERT INTO plans_old ({OLD_PLAN_COLUMNS}) SELECT {OLD_PLAN_COLUMNS} FROM plans;
            DROP TABLE plans;
            ALTER TABLE plans_old RENAME TO plans;
            CREATE INDEX ix_plans_region_id ON plans (region_id);
            CREATE INDEX ix_plans_status ON plans (status);
            DROP TABLE nations;
            COMMIT;""")
        connection.close()
        return
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as connection:
        for statement in ("ALTER TABLE plans DROP COLUMN nation_id", "DROP TABLE nations",
                          "ALTER TABLE plans ALTER COLUMN region_id SET NOT NULL"):
            connection.execute(text(statement))
    engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_database_from_before_nations_is_upgraded(tmp_path, nation_dir, backend, request):
    from oracle import random_bundle
    from sqlalchemy import create_engine, inspect

    url = f"sqlite:///{tmp_path}/old.sqlite" if backend == "sqlite" else \
        request.getfixturevalue("postgres").create_database()
    bundle = random_bundle(3, tmp_path / "bundle", teachers=10)
    with Server(url, log_dir=tmp_path) as server, server.client() as http:
        region = http.post("/v1/regions", files={"file": ("old.zip", zip_folder(bundle))}).json()["region_id"]
        old = http.post("/v1/plans", json={"region_id": region, "params": {"time_limit_s": 2}}).json()["plan_id"]
        assert wait_for(http, old)["status"] == "done"
    _back_to_before_nations(url)

    def region_id_nullable() -> bool:
        engine = create_engine(url)
        try:
            return {c["name"]: c["nullable"] for c in inspect(engine).get_columns("plans")}["region_id"]
        finally:
            engine.dispose()

    assert not region_id_nullable()
    with Server(url, log_dir=tmp_path) as server, server.client() as http:
        assert http.get(f"/v1/plans/{old}/assignments").status_code == 200
        made = http.post("/v1/nations", files={"file": ("n.zip", zip_tree(nation_dir))})
        assert made.status_code == 201, made.text
        plan = http.post(f"/v1/nations/{made.json()['nation_id']}/plans", json={"params": {"time_limit_s": 30}})
        assert plan.status_code == 202, plan.text
        assert wait_for(http, plan.json()["plan_id"], timeout=120)["status"] == "done"
        # the region and its plan are still whole, and deleting the region still removes its plan
        assert http.get("/v1/plans", params={"region_id": region}).json()[0]["plan_id"] == old
        assert http.delete(f"/v1/regions/{region}").status_code == 204
        assert http.get(f"/v1/plans/{old}").status_code == 404
    assert region_id_nullable()


# ------------------------------------------------------------------------------------------------
# MARSHRUT_RAY_ADDRESS: the regions priced on an existing Ray cluster
# ------------------------------------------------------------------------------------------------

def test_with_a_ray_address_the_regions_are_priced_on_that_cluster(tmp_path, nation_dir):
    from ray.cluster_utils import Cluster

    from marshrut.engine.nation_ray import local_auth
    from marshrut.engine.solver.routes import warm_up

    warm_up()  # numba's cache compiled before any Ray worker starts (docs/nation.md)
    with local_auth():  # the token is in this process's environment, so in the server's too
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "object_store_memory": 80 * 1024**2})
        try:
            cluster.wait_for_nodes()
            env = {"MARSHRUT_RAY_ADDRESS": cluster.address}
            with Server(f"sqlite:///{tmp_path}/ray.sqlite", env=env, log_dir=tmp_path) as server, \
                    server.client() as http:
                made = http.post("/v1/nations", files={"file": ("n.zip", zip_tree(nation_dir))}).json()["nation_id"]
                plan_id = http.post(f"/v1/nations/{made}/plans", json={"params": PARAMS}).json()["plan_id"]
                done = wait_for(http, plan_id, timeout=300)
                assert done["status"] == "done", done
                with zipfile.ZipFile(io.BytesIO(http.get(f"/v1/plans/{plan_id}/nation.zip").content)) as plan_zip:
                    plan_zip.extractall(tmp_path / "plan")
                log = server.log()
            # the cluster's own record: the job's driver connected and its region shards ran there
            import ray

            ray.init(address=cluster.address, logging_level="WARNING", log_to_driver=False)
            try:  # the GCS's actor table (ray.util.state would need the dashboard, which this cluster has not)
                from ray._private.state import actors

                shards = [a for a in actors().values() if a["ActorClassName"].endswith("RegionShard")]
            finally:
                ray.shutdown()
        finally:
            cluster.shutdown()
    assert shards, log[-3000:]
    assert check_nation_plan(nation_dir, PARAMS, tmp_path / "plan") == []
    assert done["summary"]["objective"] == pytest.approx(nation_exact_optimum(nation_dir, PARAMS), abs=1e-6)
