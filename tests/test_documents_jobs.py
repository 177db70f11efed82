"""A whole region's route documents as a job in the queue, over HTTP against the real server
(uvicorn), on SQLite and PostgreSQL: `POST /v1/plans/{id}/documents` queues it (kind documents),
`GET /v1/plans/{job}/documents.zip` serves the finished job's .zip. Roles, tenants, the per-tenant
job limit (429 with Retry-After), cancel, a restart and the audit of the queueing and the download."""

from __future__ import annotations

import datetime as dt
import io
import re
import time
import zipfile

import docx
import pandas as pd
import pytest
from api_server import Server, wait_for, zip_folder
from oracle import random_bundle

ADMIN, PLANNER, VIEWER, SOUTH = "docs-admin", "docs-north-planner", "docs-north-viewer", "docs-south-planner"
SERVER_ENV = {"MARSHRUT_API_KEYS": f"{ADMIN}:admin,{PLANNER}:planner:north,{VIEWER}:viewer:north,"
                                   f"{SOUTH}:planner:south",
              "MARSHRUT_MAX_CONCURRENT_SOLVES": "1", "MARSHRUT_MAX_JOBS_PER_TENANT": "2",
              "MARSHRUT_RATE_PER_SECOND": "1000", "MARSHRUT_RATE_BURST": "1000"}


def key(name: str) -> dict:
    return {"X-API-Key": name}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return random_bundle(23, tmp_path_factory.mktemp("documents-jobs") / "bundle", teachers=30, schools=6)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(request, tmp_path_factory, bundle):
    """The server, with north's region and a done plan of it."""
    directory = tmp_path_factory.mktemp(f"documents-jobs-{request.param}")
    url = f"sqlite:///{directory}/marshrut.sqlite" if request.param == "sqlite" else \
        request.getfixturevalue("postgres").create_database()
    with Server(url, env=SERVER_ENV, log_dir=directory) as server, server.client(headers=key(PLANNER)) as http:
        region = http.post("/v1/regions", files={"file": ("north.zip", zip_folder(bundle))})
        assert region.status_code == 201, region.text
        plan = http.post("/v1/plans", json={"region_id": region.json()["region_id"], "params": {"time_limit_s": 3}})
        assert plan.status_code == 202, plan.text
        done = wait_for(http, plan.json()["plan_id"])
        assert done["status"] == "done", server.log()
        yield server, http, done["plan_id"]


def _audit(http, since: str) -> list[tuple]:
    records = http.get("/v1/audit", params={"tenant": "north", "since": since}, headers=key(ADMIN)).json()
    return [(r["action"], r["object_id"], r["outcome"], (r["detail"] or {}).get("what")) for r in records]


def _now() -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)).replace(tzinfo=None).isoformat()


def test_the_job_writes_one_document_per_teacher_with_a_route(served, bundle):
    server, http, plan_id = served
    since = _now()
    queued = http.post(f"/v1/plans/{plan_id}/documents", json={"pdf": False})
    assert queued.status_code == 202, queued.text
    job = queued.json()
    assert job["kind"] == "documents" and job["status"] == "queued" and job["previous_plan_id"] == plan_id
    assert queued.headers["Location"].endswith(f"/v1/plans/{job['plan_id']}")
    done = wait_for(http, job["plan_id"])
    assert done["status"] == "done" and done["kind"] == "documents" and done["progress"]["phase"] == "done", done

    answer = http.get(f"/v1/plans/{job['plan_id']}/documents.zip")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/zip", answer.text[:300]
    assignments = pd.read_csv(io.BytesIO(http.get(f"/v1/plans/{plan_id}/assignments?format=csv").content),
                              dtype=str, keep_default_na=False)
    teachers = pd.read_csv(bundle / "teachers.csv", dtype=str, keep_default_na=False)
    school_of = dict(zip(teachers["teacher_id"], teachers["school_id"]))
    with_route = sorted(set(assignments["teacher_id"]))
    assert len(with_route) >= 3
    with zipfile.ZipFile(io.BytesIO(answer.content)) as archive:
        names = archive.namelist()
        routes = {n.rsplit("/", 1)[1].removeprefix("ИОМ_").removesuffix(".docx"): n for n in names if "/ИОМ_" in n}
        # one document per teacher with a route, in the folder of the teacher's school, with its summary
        assert sorted(routes) == with_route and len(names) == len(routes) + len({school_of[t] for t in with_route})
        for teacher, name in routes.items():
            folder = name.rsplit("/", 1)[0]
            assert folder.startswith(f"{school_of[teacher]} ") and f"{folder}/Сводка_{school_of[teacher]}.docx" in names
        for teacher in with_route[:3]:  # a few opened: the teacher's id and a step of their route
            document = docx.Document(io.BytesIO(archive.read(routes[teacher])))
            cells = [c.text for table in document.tables for row in table.rows for c in row.cells]
            assert teacher in cells
            step = http.get(f"/v1/plans/{plan_id}/routes/{teacher}").json()["steps"][0]
            assert any(c.startswith(step["name"]) for c in cells), (teacher, step["name"])
    summary = http.get(f"/v1/plans/{job['plan_id']}").json()["summary"]
    assert summary["teachers"] == len(with_route) and summary["docx"] == len(names) and summary["pdf"] == 0

    # the other endpoints of a documents job: a plan is not a documents job, a job has no routes
    assert http.get(f"/v1/plans/{plan_id}/documents.zip").status_code == 404
    assert http.post(f"/v1/plans/{job['plan_id']}/documents", json={}).status_code == 404
    assert http.post(f"/v1/plans/{plan_id}/documents", json={"pdf": "perhaps"}).status_code == 422
    # the queueing and the download are in the audit, the download as an export of personal data
    assert [a for a in _audit(http, since) if a[1] == job["plan_id"]] == [
        ("plan.documents", job["plan_id"], "ok", None), ("plan.export", job["plan_id"], "ok", "documents")]


def test_pdfs_and_progress(served):
    server, http, plan_id = served
    job = http.post(f"/v1/plans/{plan_id}/documents", json={"pdf": True}).json()["plan_id"]
    phases = set()
    deadline = time.monotonic() + 300
    while (plan := http.get(f"/v1/plans/{job}").json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, plan
        phases.add((plan.get("progress") or {}).get("phase"))
        time.sleep(0.1)
    assert plan["status"] == "done", plan
    docx_count = plan["summary"]["docx"]
    assert plan["summary"]["pdf"] == docx_count
    # LibreOffice takes seconds: the job is seen converting, its count out of every document
    assert f"pdf 0/{docx_count}" in phases, phases
    assert all(re.fullmatch(r"(documents|pdf) \d+/\d+", p) for p in phases if p), phases
    with zipfile.ZipFile(io.BytesIO(http.get(f"/v1/plans/{job}/documents.zip").content)) as archive:
        names = archive.namelist()
        pdfs = [n for n in names if n.endswith(".pdf")]
        assert len(pdfs) == docx_count == len(names) - len(pdfs)
        assert {n.removesuffix(".pdf") for n in pdfs} == {n.removesuffix(".docx") for n in names if n.endswith(".docx")}
        assert archive.read(pdfs[0]).startswith(b"%PDF")


def test_roles_and_tenants(served):
    server, http, plan_id = served
    viewer = http.post(f"/v1/plans/{plan_id}/documents", json={}, headers=key(VIEWER))
    assert viewer.status_code == 403, viewer.text
    job = http.post(f"/v1/plans/{plan_id}/documents", json={}).json()["plan_id"]
    assert wait_for(http, job)["status"] == "done"
    assert http.get(f"/v1/plans/{job}/documents.zip", headers=key(VIEWER)).status_code == 200  # a viewer reads it
    unknown = "0" * 32
    for path in (f"/v1/plans/{plan_id}/documents", f"/v1/plans/{job}/documents"):
        south = http.post(path, json={}, headers=key(SOUTH))
        assert south.status_code == 404, south.text
        assert south.json() == http.post(f"/v1/plans/{unknown}/documents", json={}, headers=key(SOUTH)).json()
    south = http.get(f"/v1/plans/{job}/documents.zip", headers=key(SOUTH))
    assert south.status_code == 404
    assert south.json() == http.get(f"/v1/plans/{unknown}/documents.zip", headers=key(SOUTH)).json()


def test_limit_cancel_and_a_crash(served):
    """A job making PDFs (LibreOffice: seconds) holds the only solver slot; a second waits in the
    queue, counted in north's limit of 2 jobs; a third is refused. Both are cancelled like any job.
    A job running when its server is killed is run again by the next server."""
    server, http, plan_id = served
    since = _now()
    running = http.post(f"/v1/plans/{plan_id}/documents", json={"pdf": True}).json()["plan_id"]
    queued = http.post(f"/v1/plans/{plan_id}/documents", json={})
    assert queued.status_code == 202, queued.text
    queued = queued.json()["plan_id"]
    over = http.post(f"/v1/plans/{plan_id}/documents", json={})
    assert over.status_code == 429 and int(over.headers["Retry-After"]) >= 1, over.text
    assert ("plan.documents", None, "429", None) in _audit(http, since)
    assert http.get(f"/v1/plans/{queued}").json()["status"] == "queued"
    assert http.delete(f"/v1/plans/{queued}").json()["status"] == "cancelled"
    assert wait_for(http, running, statuses=("running",))["kind"] == "documents"
    assert http.delete(f"/v1/plans/{running}").json()["status"] == "cancelled"
    assert http.get(f"/v1/plans/{running}/documents.zip").status_code == 409
    again = http.post(f"/v1/plans/{plan_id}/documents", json={})  # room again
    assert again.status_code == 202 and wait_for(http, again.json()["plan_id"])["status"] == "done"

    job = http.post(f"/v1/plans/{plan_id}/documents", json={"pdf": True}).json()["plan_id"]
    wait_for(http, job, statuses=("running",))
    server.kill9()
    server.start()
    done = wait_for(http, job, timeout=300)
    assert done["status"] == "done" and done["attempt"] == 2, (done, server.log())
    with zipfile.ZipFile(io.BytesIO(http.get(f"/v1/plans/{job}/documents.zip").content)) as archive:
        assert sum(n.endswith(".pdf") for n in archive.namelist()) == done["summary"]["pdf"] == done["summary"]["docx"]


def test_a_zip_too_large_to_store_fails_the_job_with_its_reason(bundle, tmp_path, monkeypatch):
    """In the job's own function (the solver process's part): past the bound nothing is stored and
    the job fails saying why; within it the progress goes through `send`."""
    from marshrut.api import worker
    from marshrut.engine import InputError, plan_region, write_plan
    from marshrut.engine.bundle import load_bundle
    from marshrut.engine.params import Params

    region, params = load_bundle(bundle), Params(time_limit_s=5)
    assignments = (write_plan(plan_region(region, params), tmp_path / "plan") / "assignments.csv").read_bytes()
    job = {"source_plan_id": "p", "pdf": False}
    sent = []
    files = worker._documents_files(region, params, job, assignments, lambda _, phase: sent.append(phase), None)
    size = len(files["documents.zip"])
    total = len(zipfile.ZipFile(io.BytesIO(files["documents.zip"])).namelist())
    assert sent[0] == f"documents 0/{total}" and sent[-1] == f"documents {total}/{total}"
    monkeypatch.setattr(worker, "MAX_DOCUMENTS_ZIP_BYTES", size - 1)
    with pytest.raises(InputError) as error:
        worker._documents_files(region, params, job, assignments, lambda *_: None, None)
    assert error.value.problems[0].code == "too_large" and "муниципалитетам" in error.value.problems[0].message
