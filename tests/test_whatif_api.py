"""The what-if endpoints over HTTP (in-process): explain (region, per teacher, CSV), fit, replan
(stored as a new plan), sweep; bad changes are 422 naming each id."""

from __future__ import annotations

import base64
import io
import time

import pandas as pd
import pytest
from api_server import zip_folder
from fastapi.testclient import TestClient
from oracle import check_plan, random_bundle

from marshrut.api.main import create_app
from marshrut.api.routers import explain as explain_router
from marshrut.api.settings import Settings


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return random_bundle(5, tmp_path_factory.mktemp("whatif") / "bundle", teachers=24, tight=0.5)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    directory = tmp_path_factory.mktemp("whatif-api")
    # TestClient's address is not loopback: the service asks for a key
    app = create_app(Settings(database_url=f"sqlite:///{directory}/db.sqlite", max_concurrent_solves=1,
                              api_keys="whatif-test-key:planner"))
    if not any(getattr(r, "path", "").endswith("/explain") for r in app.routes):
        app.include_router(explain_router.router)
    with TestClient(app, headers={"X-API-Key": "whatif-test-key"}) as http:
        yield http


def finished(client, plan_id: str) -> dict:
    deadline = time.time() + 120
    while time.time() < deadline:
        plan = client.get(f"/v1/plans/{plan_id}").json()
        if plan["status"] in ("done", "failed", "cancelled"):
            return plan
        time.sleep(0.2)
    raise AssertionError(f"{plan_id} still {plan['status']}")


@pytest.fixture(scope="module")
def plan_id(client, bundle):
    region = client.post("/v1/regions", files={"file": ("b.zip", zip_folder(bundle), "application/zip")})
    assert region.status_code == 201, region.text
    plan = client.post("/v1/plans", json={"region_id": region.json()["region_id"], "params": {"time_limit_s": 3}})
    assert plan.status_code == 202, plan.text
    plan_id = plan.json()["plan_id"]
    assert finished(client, plan_id)["status"] == "done"
    return plan_id


def test_explain_region_teacher_and_csv(client, plan_id):
    answer = client.get(f"/v1/plans/{plan_id}/explain")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["uncovered"] == sum(r["needs"] for r in body["reasons"].values())
    assert {t["scope"] for t in body["totals"]} <= {"region", "municipality", "competency"}
    csv = client.get(f"/v1/plans/{plan_id}/explain?format=csv")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    frame = pd.read_csv(io.BytesIO(csv.content), dtype=str, keep_default_na=False)
    assert (frame["row"] == "uncovered").sum() == body["uncovered"]
    teacher = frame[frame["row"] == "uncovered"]["teacher_id"].iloc[0]
    mine = client.get(f"/v1/plans/{plan_id}/explain/{teacher}").json()
    assert mine["teacher_id"] == teacher and mine["uncovered"] and all(u["reason"] for u in mine["uncovered"])
    assert client.get(f"/v1/plans/{plan_id}/explain/NOBODY").status_code == 404
    assert client.get("/v1/plans/" + "0" * 32 + "/explain").status_code == 404


def test_fit(client, plan_id, bundle):
    schools = pd.read_csv(bundle / "schools.csv", dtype=str)
    competencies = pd.read_csv(bundle / "competencies.csv", dtype=str)
    teacher = {"teacher_id": "NEW", "school_id": schools["school_id"].iloc[0], "voucher_rub": 40000,
               "max_hours": 144, "scores": {c: 15 for c in competencies["competency_id"]}}
    answer = client.post(f"/v1/plans/{plan_id}/fit", json={"teacher": teacher, "top": 3})
    assert answer.status_code == 200, answer.text
    routes = answer.json()["routes"]
    assert len(routes) <= 3 and [r["rank"] for r in routes] == list(range(1, len(routes) + 1))
    bad = client.post(f"/v1/plans/{plan_id}/fit", json={"teacher": {**teacher, "school_id": "NOPE"}})
    assert bad.status_code == 422 and "NOPE" in bad.text


def test_replan_is_a_new_plan_and_bad_changes_are_named(client, plan_id, bundle):
    assignments = client.get(f"/v1/plans/{plan_id}/assignments").json()["assignments"]
    session = next(a["resource_id"] for a in assignments if a["kind"] != "mentor")
    queued = client.post(f"/v1/plans/{plan_id}/replan",
                         json={"changes": {"cancel_sessions": [session]}, "time_limit_s": 3})
    assert queued.status_code == 202, queued.text
    job = queued.json()
    assert job["kind"] == "replan" and job["previous_plan_id"] == plan_id
    assert client.get(f"/v1/plans/{job['plan_id']}/replan").status_code in (200, 409)  # 409 until done
    done = finished(client, job["plan_id"])
    assert done["status"] == "done" and done["kind"] == "replan", done
    answer = client.get(f"/v1/plans/{job['plan_id']}/replan")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["plan_id"] == job["plan_id"] and body["previous_plan_id"] == plan_id
    cancelled = sum(1 for a in assignments if a["resource_id"] == session)
    assert body["report"]["dropped_by_reason"]["session_cancelled"] == cancelled
    assert body["report"]["changed"] == len(body["changed"])
    new = client.get(f"/v1/plans/{body['plan_id']}")
    assert new.json()["status"] == "done"
    rows = client.get(f"/v1/plans/{body['plan_id']}/assignments?format=csv")
    frame = pd.read_csv(io.BytesIO(rows.content), dtype=str, keep_default_na=False)
    assert session not in set(frame["resource_id"])
    assert check_plan(bundle, {}, frame) == []  # the cancelled session is simply unused: valid on the bundle
    assert client.get(f"/v1/plans/{body['plan_id']}/explain").status_code == 200
    bad = client.post(f"/v1/plans/{plan_id}/replan", json={"changes": {"remove_mentors": ["NOPE"],
                                                                        "cancel_sessions": ["NONE"]}})
    assert bad.status_code == 422
    assert {p["value"] for p in bad.json()["problems"]} == {"NOPE", "NONE"}


def test_sweep(client, plan_id):
    queued = client.post(f"/v1/plans/{plan_id}/sweep", json={"what": "budget", "factors": "0.5x,1x",
                                                             "time_limit_s": 2})
    assert queued.status_code == 202, queued.text
    job = queued.json()["plan_id"]
    done = finished(client, job)
    assert done["status"] == "done" and done["kind"] == "sweep" and done["progress"]["phase"] == "done", done
    answer = client.get(f"/v1/plans/{job}/sweep")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [p["factor"] for p in body["points"]] == [0.5, 1.0]
    assert base64.b64decode(body["png_base64"])[:4] == b"\x89PNG"
    csv = client.get(f"/v1/plans/{job}/sweep?format=csv")
    assert csv.status_code == 200 and len(pd.read_csv(io.BytesIO(csv.content))) == 2
    assert client.get(f"/v1/plans/{plan_id}/sweep").status_code == 404  # a plan, not a sweep
    bad = client.post(f"/v1/plans/{plan_id}/sweep", json={"factors": "2x..1x"})
    assert bad.status_code == 422
