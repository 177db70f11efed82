"""Route documents and the Excel round trip over HTTP, on the real server (uvicorn, SQLite): a
teacher's document (.docx, .pdf), a school's and a municipality's package (.zip), and plan.xlsx
given back with decisions (a new plan that pins and forbids exactly what was marked; bad rows are
a 422 naming each row, and no plan is added)."""

from __future__ import annotations

import io
import subprocess
import zipfile

import docx
import openpyxl
import pandas as pd
import pytest
from api_server import Server, wait_for, zip_folder
from test_documents import DETAILS, region_tables, with_details
from tiny import tiny_bundle

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    directory = tmp_path_factory.mktemp("documents-api")
    bundle = with_details(tiny_bundle(directory / "bundle", **region_tables()))
    with Server(f"sqlite:///{directory}/marshrut.sqlite", log_dir=directory,
                env={"MARSHRUT_MAX_CONCURRENT_SOLVES": "1"}) as server, server.client() as http:
        region = http.post("/v1/regions", files={"file": ("tiny.zip", zip_folder(bundle), "application/zip")})
        assert region.status_code == 201, region.text
        plan = http.post("/v1/plans", json={"region_id": region.json()["region_id"], "params": {"time_limit_s": 5}})
        assert plan.status_code == 202, plan.text
        plan_id = plan.json()["plan_id"]
        assert wait_for(http, plan_id)["status"] == "done", server.log()
        yield http, plan_id, bundle


def _assignments(http, plan_id) -> pd.DataFrame:
    content = http.get(f"/v1/plans/{plan_id}/assignments?format=csv").content
    return pd.read_csv(io.BytesIO(content), dtype=str, keep_default_na=False)


def test_teacher_document_docx_and_pdf(served, tmp_path):
    http, plan_id, _ = served
    assignments = _assignments(http, plan_id)
    teacher = "T1" if "T1" in set(assignments["teacher_id"]) else assignments["teacher_id"].iloc[0]
    answer = http.get(f"/v1/plans/{plan_id}/documents/teachers/{teacher}")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/vnd.openxmlformats-officedocument.wordprocessing")
    assert f"IOM_{teacher}_" in answer.headers["content-disposition"]
    document = docx.Document(io.BytesIO(answer.content))
    cells = [c.text for table in document.tables for row in table.rows for c in row.cells]
    assert teacher in cells and (teacher not in DETAILS or DETAILS[teacher][0] in cells)
    steps = document.tables[2]
    assert len(steps.rows) - 1 == int((assignments["teacher_id"] == teacher).sum())
    pdf = http.get(f"/v1/plans/{plan_id}/documents/teachers/{teacher}?format=pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    (tmp_path / "route.pdf").write_bytes(pdf.content)
    text = subprocess.run(["pdftotext", "-enc", "UTF-8", str(tmp_path / "route.pdf"), "-"], capture_output=True,
                          check=True).stdout.decode("utf-8")
    assert "ИНДИВИДУАЛЬНЫЙ ОБРАЗОВАТЕЛЬНЫЙ МАРШРУТ" in text
    # T5 has no deficit and no route; NOBODY is not in the region; neither has a document.
    assert http.get(f"/v1/plans/{plan_id}/documents/teachers/T5").status_code == 404
    assert http.get(f"/v1/plans/{plan_id}/documents/teachers/NOBODY").status_code == 404
    assert http.get("/v1/plans/" + "0" * 32 + "/documents/teachers/T1").status_code == 404


def test_school_and_municipality_packages(served):
    http, plan_id, bundle = served
    assignments = _assignments(http, plan_id)
    teachers = pd.read_csv(bundle / "teachers.csv", dtype=str, keep_default_na=False)
    schools = pd.read_csv(bundle / "schools.csv", dtype=str, keep_default_na=False)
    school_of = dict(zip(teachers["teacher_id"], teachers["school_id"]))
    municipality_of = dict(zip(schools["school_id"], schools["municipality_id"]))
    with_route = set(assignments["teacher_id"])
    school = school_of[sorted(with_route)[0]]
    answer = http.get(f"/v1/plans/{plan_id}/documents/schools/{school}")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(answer.content)) as package:
        names = package.namelist()
        for name in names:
            docx.Document(io.BytesIO(package.read(name)))  # every member is a document Word opens
    mine = {t for t in with_route if school_of[t] == school}
    assert sorted(n.rsplit("/", 1)[1] for n in names) == sorted([f"Сводка_{school}.docx"]
                                                                 + [f"ИОМ_{t}.docx" for t in mine])
    municipality = municipality_of[school]
    answer = http.get(f"/v1/plans/{plan_id}/documents/municipalities/{municipality}")
    assert answer.status_code == 200
    with zipfile.ZipFile(io.BytesIO(answer.content)) as package:
        names = package.namelist()
    in_municipality = {t for t in with_route if municipality_of[school_of[t]] == municipality}
    assert sum(n.endswith(".docx") and "/ИОМ_" in n for n in names) == len(in_municipality)
    assert http.get(f"/v1/plans/{plan_id}/documents/schools/NOPE").status_code == 404
    assert http.get(f"/v1/plans/{plan_id}/documents/municipalities/NOPE").status_code == 404


def _marked_workbook(content: bytes, marks: dict[tuple[str, str], str], extra: list[dict] = ()) -> bytes:
    workbook = openpyxl.load_workbook(io.BytesIO(content))
    sheet = workbook["Маршруты"]
    header = [c.value for c in sheet[1]]
    column = {name: i + 1 for i, name in enumerate(header)}
    for row in range(2, sheet.max_row + 1):
        key = (sheet.cell(row, column["Код педагога"]).value, sheet.cell(row, column["Код ресурса"]).value)
        if key in marks:
            sheet.cell(row, column["Решение"]).value = marks[key]
    for values in extra:
        row = sheet.max_row + 1
        for name, value in values.items():
            sheet.cell(row, column[name]).value = value
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def test_decisions_upload_replans_with_pins_and_forbids(served):
    http, plan_id, _ = served
    assignments = _assignments(http, plan_id)
    workbook = http.get(f"/v1/plans/{plan_id}/export.xlsx").content
    forbid, pin = assignments.iloc[0], assignments.iloc[-1]
    plans_before = len(http.get("/v1/plans").json())
    bad = _marked_workbook(workbook, {(forbid.teacher_id, forbid.resource_id): "может быть"},
                           [{"Код педагога": "T1", "Вид": "Программа ДПП", "Код ресурса": "PS404",
                             "Решение": "закрепить"}])
    answer = http.post(f"/v1/plans/{plan_id}/decisions", files={"file": ("plan.xlsx", bad, XLSX)})
    assert answer.status_code == 422, answer.text
    problems = answer.json()["problems"]
    assert {(p["column"], p["code"]) for p in problems} == {("Решение", "bad_value"), ("Код ресурса", "unknown_id")}
    assert all(p["row"] and p["file"] == "plan.xlsx: Маршруты" for p in problems)
    assert len(http.get("/v1/plans").json()) == plans_before  # nothing re-planned

    good = _marked_workbook(workbook, {(forbid.teacher_id, forbid.resource_id): "исключить",
                                       (pin.teacher_id, pin.resource_id): "закрепить"},
                            [{"Код педагога": "T5", "Вид": "Программа ДПП", "Код ресурса": "PS1",
                              "Решение": "закрепить"}])
    answer = http.post(f"/v1/plans/{plan_id}/decisions?time_limit_s=5",
                       files={"file": ("plan.xlsx", good, XLSX)})
    assert answer.status_code == 202, answer.text  # a re-plan, queued like any
    new_id = answer.json()["plan_id"]
    assert answer.json()["kind"] == "replan" and answer.json()["previous_plan_id"] == plan_id
    assert wait_for(http, new_id)["status"] == "done"
    new = _assignments(http, new_id)
    rows = set(zip(new["teacher_id"], new["kind"], new["resource_id"]))
    assert (forbid.teacher_id, forbid.kind, forbid.resource_id) not in rows
    assert {(pin.teacher_id, pin.kind, pin.resource_id), ("T5", "program", "PS1")} <= rows
    params = http.get(f"/v1/plans/{new_id}").json()["params"]
    assert len(params["pinned"]) == 2 and len(params["forbidden"]) == 1  # the new plan remembers them
    assert http.get(f"/v1/plans/{new_id}/documents/teachers/T5").status_code == 200
