"""The planners' web page, end to end: the real server under uvicorn, a real headless Chromium.

Debian's `chromium` driven by Playwright for Python (no browser download: `executable_path`).
Screenshots go to tests/artifacts/web/ (or $MARSHRUT_ARTIFACTS), printed at the end of each test.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import time
import zipfile
from pathlib import Path

import pytest

from api_server import REPO, Server, folder_members, zip_folder, zip_members, zip_tree

# A real browser is part of the test suite: Debian's Chromium (README's test command and .ci/run
# install it) driven by Playwright; without it these tests fail, they are never skipped.
from playwright import sync_api  # noqa: E402

CHROMIUM = os.environ.get("MARSHRUT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SAMPLES = REPO / "datasets" / "samples"
ARTIFACTS = Path(os.environ.get("MARSHRUT_ARTIFACTS", REPO / "tests" / "artifacts")) / "web"
TIMEOUT_MS = 90_000



# ------------------------------------------------------------------------------------------------
# Russian number formats, as Intl.NumberFormat('ru-RU') writes them (spaces normalised)
# ------------------------------------------------------------------------------------------------

def _group(integer: str) -> str:
    sign, digits = ("-", integer[1:]) if integer.startswith("-") else ("", integer)
    groups = []
    while digits:
        groups.insert(0, digits[-3:])
        digits = digits[:-3]
    return sign + " ".join(groups)


def ru_num(value: float, digits: int) -> str:
    text = f"{value:.{digits}f}"
    integer, _, fraction = text.partition(".")
    return _group(integer) + ("," + fraction if fraction else "")


def ru_rub(value: float) -> str:
    return ru_num(round(value), 0) + " ₽"


def ru_pct(share: float) -> str:
    return ru_num(share * 100, 1) + " %"


def norm(text: str) -> str:
    return re.sub(r"[\u00a0\u202f\s]+", " ", text or "").strip()


def test_russian_formats() -> None:
    assert ru_num(464000, 0) == "464 000" and ru_num(2.0307, 2) == "2,03" and ru_num(1234, 0) == "1 234"
    assert ru_rub(193300) == "193 300 ₽" and ru_pct(0.68284) == "68,3 %"


# ------------------------------------------------------------------------------------------------
# fixtures: one server, one browser for the module
# ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def artifacts() -> Path:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("web")
    with Server(f"sqlite:///{directory}/marshrut.sqlite", log_dir=directory,
                env={"MARSHRUT_MAX_CONCURRENT_SOLVES": "1"}) as running:
        yield running


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture()
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="ru-RU", accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.goto(server.url + "/")
    page.wait_for_selector("body[data-ready='1']")
    yield page
    context.close()
    # a 422 of a broken bundle is logged by Chromium as a failed resource: that one is expected
    unexpected = [e for e in errors if "422" not in e]
    assert not unexpected, f"errors in the page: {unexpected}"


def hash_ids(page) -> dict:
    return dict(part.split("=", 1) for part in page.evaluate("location.hash").lstrip("#").split("&") if "=" in part)


def upload(page, name: str, content: bytes) -> None:
    page.set_input_files("#bundle-file", files=[{"name": name, "mimeType": "application/zip", "buffer": content}])
    page.click("#upload-button")


def shot(page, artifacts: Path, name: str, selector: str | None = None, full_page: bool = True) -> Path:
    path = artifacts / f"{name}.png"
    if selector:
        page.locator(selector).screenshot(path=str(path))
    else:
        page.screenshot(path=str(path), full_page=full_page)
    return path


# ------------------------------------------------------------------------------------------------
# the tests
# ------------------------------------------------------------------------------------------------

def test_page_and_assets_are_served_locally(server) -> None:
    with server.client() as http:
        index = http.get("/")
        assert index.status_code == 200 and "text/html" in index.headers["content-type"]
        for asset in re.findall(r'(?:src|href)="(/web/[^"]+)"', index.text):
            assert http.get(asset).status_code == 200, asset
        assert not re.search(r'(?:src|href)="(?:https?:)?//', index.text), "nothing from another host"
        assert http.get("/web/../main.py").status_code == 404
        assert http.get("/web/%2e%2e/main.py").status_code == 404


def test_template_workbook_is_a_valid_bundle(server) -> None:
    from openpyxl import load_workbook

    from marshrut.engine import load_upload
    from marshrut.engine.bundle import SCHEMA

    with server.client() as http:
        response = http.get("/v1/template.xlsx")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/vnd.openxml")
    workbook = load_workbook(io.BytesIO(response.content))
    assert set(workbook.sheetnames) == {"region"} | {name.removesuffix(".csv") for name in SCHEMA}
    for file, columns in SCHEMA.items():
        sheet = workbook[file.removesuffix(".csv")]
        header = [cell.value for cell in sheet[1]]
        assert header[:len(columns)] == [c.name for c in columns], file
        assert sheet.max_row >= 2, f"{file}: an example row"
    region = load_upload(response.content, "template.xlsx")
    assert len(region.teachers) == 1


def test_upload_plan_results_and_route(page, server, artifacts) -> None:
    started = time.monotonic()
    bundle = zip_folder(SAMPLES / "tomsk-school-44", prefix="tomsk-school-44/")
    upload(page, "tomsk-school-44.zip", bundle)
    page.wait_for_selector("#region-info:not([hidden]) .figure[data-key='municipal_budgets_rub']")
    region_id = hash_ids(page)["region"]
    http = server.client()
    region = http.get(f"/v1/regions/{region_id}").json()
    figures = {key: norm(page.text_content(f"#region-figures [data-key='{key}'] .value"))
               for key in ("teachers", "schools", "municipalities", "mentors", "region_budget_rub", "vouchers_rub")}
    assert figures == {"teachers": ru_num(region["teachers"], 0), "schools": ru_num(region["schools"], 0),
                       "municipalities": ru_num(region["municipalities"], 0), "mentors": ru_num(region["mentors"], 0),
                       "region_budget_rub": ru_rub(region["region_budget_rub"]),
                       "vouchers_rub": ru_rub(region["vouchers_rub"])}
    assert norm(page.text_content("#region-name")) == region["name"]
    shots = [shot(page, artifacts, "1-region")]

    # ---- plan: defaults shown, a short time limit, start, follow ---------------------------------
    assert page.input_value("#param-deficit_threshold") == "70"
    assert page.input_value("#param-max_travel_minutes") == "180"
    assert page.is_checked("#param-mentor_from_other_school")
    page.fill("#param-time_limit_s", "5")
    page.click("#start-button")
    page.wait_for_selector("#plan-status[data-status]")
    page.wait_for_selector("body[data-results]", timeout=TIMEOUT_MS)
    plan_id = hash_ids(page)["plan"]
    plan = http.get(f"/v1/plans/{plan_id}").json()
    assert plan["status"] == "done" and plan["params"]["time_limit_s"] == 5
    summary = plan["summary"]
    page.wait_for_selector("#map svg circle.mun")

    # progress chart: both series drawn, the last point the final objective
    assert page.locator("#progress-chart path.series-objective").count() == 1
    assert page.locator("#progress-chart path.series-bound").count() == 1
    assert norm(page.text_content("#plan-status")).startswith("План: готов")

    # headline
    def headline(key: str) -> tuple[str, str]:
        node = page.locator(f"#headline [data-key='{key}']")
        return norm(node.locator(".value").text_content()), node.get_attribute("data-value")

    assert headline("need_covered_share") == (ru_pct(summary["need_covered_share"]),
                                              str(summary["need_covered_share"]))
    assert headline("teachers_reached")[0] == ru_num(summary["teachers_reached"], 0)
    assert headline("cost_total_rub")[0] == ru_rub(summary["cost_total_rub"])
    assert headline("objective")[0] == ru_num(summary["objective"], 3)

    # need per competency: every competency, with the summary's figures
    rows = page.locator("#need-chart g.bar-row[data-competency]")
    by_competency = summary["need_by_competency"]
    assert rows.count() == len(by_competency) + 1
    for cid, values in by_competency.items():
        row = page.locator(f"#need-chart g[data-competency='{cid}']")
        assert float(row.get_attribute("data-need")) == pytest.approx(values["need"])
        assert float(row.get_attribute("data-covered")) == pytest.approx(values["covered"])
        share = ru_pct(values["covered"] / values["need"]) if values["need"] > 0 else "—"
        assert norm(row.locator("text.bar-text").text_content()) == \
            f"{ru_num(values['covered'], 2)} из {ru_num(values['need'], 2)} · {share}"

    # capacity use and spending
    for kind, use in summary["capacity_use"].items():
        row = page.locator(f"#capacity-chart g[data-kind='{kind}']")
        assert (row.get_attribute("data-used"), row.get_attribute("data-capacity")) == \
            (str(use["used"]), str(use["capacity"]))
        assert norm(row.locator("text.bar-text").text_content()).startswith(
            f"{ru_num(use['used'], 0)} из {ru_num(use['capacity'], 0)}")
    spending = summary["spending"]
    region_row = page.locator("#spending-chart g[data-scope='region'] text.bar-text")
    assert norm(region_row.text_content()) == \
        f"{ru_rub(spending['municipalities_rub'])} из {ru_rub(spending['region_budget_rub'])}"
    for mid, values in spending["by_municipality"].items():
        row = page.locator(f"#spending-chart g[data-municipality='{mid}']")
        assert row.get_attribute("data-spent") == str(values["spent_rub"])
        assert ru_rub(values["spent_rub"]) in norm(row.text_content())

    # municipalities: the table and the map agree with the API; the table's total with the summary
    municipalities = http.get(f"/v1/plans/{plan_id}/municipalities").json()
    assert municipalities["need_covered"] == pytest.approx(summary["need_covered"], abs=1e-5)
    assert municipalities["need_total"] == pytest.approx(summary["need_total"], abs=1e-5)
    shown = [m for m in municipalities["municipalities"] if m["teachers"] or m["spent_rub"] or m["budget_rub"] is not None]
    assert page.locator("#mun-table tbody tr").count() == len(shown)
    for m in shown:
        cells = [norm(c) for c in page.locator(f"#mun-table tr[data-municipality='{m['municipality_id']}'] > *")
                 .all_text_contents()]
        assert cells[:5] == [m["name"], ru_num(m["teachers"], 0), ru_num(m["teachers_reached"], 0),
                             ru_num(m["need_total"], 2), ru_num(m["need_covered"], 2)]
    region_map = http.get(f"/v1/regions/{region_id}/map").json()
    assert page.locator("#map circle.mun").count() == len(region_map["municipalities"])
    away = [t for t in municipalities["trips"] if t["from"] != t["to"]]
    internships = [t for t in away if t["kind"] == "internship"]
    assert internships, "the sample sends teachers to internships in other towns"
    assert page.locator("#map path.trip").count() == len(internships)  # internships by default
    for trip in internships:
        line = page.locator(f"#map path.trip[data-from='{trip['from']}'][data-to='{trip['to']}']")
        assert line.get_attribute("data-count") == str(trip["count"])
    page.check("#map-legend input[data-kind='program']")
    page.check("#map-legend input[data-kind='mentor']")
    assert page.locator("#map path.trip").count() == len(away)
    assert page.locator("#trips-table tbody tr").count() == len(away)

    # fairness: reached and covered shares by group as in summary.json, municipalities from the least reached
    fairness = summary["fairness"]
    for group in ("low_results", "other_schools", "due", "not_due"):
        for measure, key in (("reached", "reached_share"), ("covered", "need_covered_share")):
            row = page.locator(f"#fairness-chart g[data-group='{group}'][data-measure='{measure}']")
            want = fairness[group][key]
            assert row.get_attribute("data-share") == ("" if want is None else str(want)) or \
                float(row.get_attribute("data-share")) == pytest.approx(want)
    assert fairness["due"]["teachers_with_need"] > 0, "the sample carries last_training_date: some are due"
    shown_muns = page.locator("#fairness-chart g[data-municipality]")
    assert [shown_muns.nth(i).get_attribute("data-municipality") for i in range(shown_muns.count())] == \
        [m["municipality_id"] for m in fairness["municipalities"]]
    assert f"Без назначений осталось {ru_num(fairness['teachers_left_out'], 0)}" in \
        norm(page.text_content("#fairness-chart"))
    assert page.input_value("#param-floor_due") == "0"
    shots.append(shot(page, artifacts, "2d-fairness", "#fairness-figure"))

    # deficit profiles
    assert page.locator("#heatmap g.heat-row").count() == len(summary["profiles"])
    first = summary["profiles"][0]
    cells = page.locator(f"#heatmap g.heat-row[data-cluster='{first['cluster']}'] g.heat-cell")
    assert cells.count() == len(first["mean_deficit"])

    # downloads: the link gives the same bytes as the API
    with page.expect_download() as download_info:
        page.click("#downloads a[data-file='assignments.csv']")
    saved = Path(download_info.value.path()).read_bytes()
    assert saved == http.get(f"/v1/plans/{plan_id}/assignments", params={"format": "csv"}).content
    for name in ("plan.xlsx", "routes.csv", "clusters.csv", "summary.json"):
        href = page.get_attribute(f"#downloads a[data-file='{name}']", "href")
        assert http.get(href).status_code == 200, name
    shots.append(shot(page, artifacts, "2-results"))
    shots.append(shot(page, artifacts, "2a-charts", "#charts"))
    shots.append(shot(page, artifacts, "2b-map", "#map-figure"))
    shots.append(shot(page, artifacts, "2c-heatmap", "#heatmap-figure"))

    # ---- one teacher's route ---------------------------------------------------------------------
    assignments = http.get(f"/v1/plans/{plan_id}/assignments").json()["assignments"]
    counts: dict[str, int] = {}
    for row in assignments:
        counts[row["teacher_id"]] = counts.get(row["teacher_id"], 0) + 1
    teacher_id = max(sorted(counts), key=lambda t: counts[t])
    route = http.get(f"/v1/plans/{plan_id}/routes/{teacher_id}").json()
    page.fill("#teacher-input", teacher_id)
    page.press("#teacher-input", "Enter")
    page.wait_for_selector(f"#route-head[data-teacher='{teacher_id}']")
    steps = page.locator("#timeline li.tl-step")
    assert steps.count() == len(route["steps"]) == counts[teacher_id] >= 2
    for i, step in enumerate(route["steps"]):
        item = steps.nth(i)
        assert item.get_attribute("data-resource") == step["resource_id"]
        assert item.get_attribute("data-kind") == step["kind"]
        text = norm(item.text_content())
        assert step["name"] in text and step["resource_id"] in text
        assert norm(item.locator(".tl-cost").text_content()) == ru_rub(step["cost_rub"])
        assert norm(item.locator(".tl-hours").text_content()) == f"{ru_num(step['hours'], 0)} ч"
        assert item.locator(".chip").count() == len(step["addresses"]) >= 1
    need_text = norm(page.text_content("#route-head .route-need"))
    assert need_text.startswith(f"потребность {ru_num(route['need_total'], 3)} → после маршрута "
                                f"{ru_num(route['need_after'], 3)}")
    teacher = http.get(f"/v1/plans/{plan_id}/teachers/{teacher_id}").json()
    assert teacher["need_covered"] == pytest.approx(route["need_covered"], abs=1e-5)
    assert page.locator("#teacher-needs g.bar-row").count() == sum(1 for c in teacher["competencies"] if c["need"] > 0)
    page.locator("#teacher-h").scroll_into_view_if_needed()
    shots.append(shot(page, artifacts, "3-route", "#results"))
    page.set_viewport_size({"width": 1280, "height": 800})
    page.locator("#teacher-h").evaluate("node => node.scrollIntoView()")
    shots.append(shot(page, artifacts, "3a-route-viewport", full_page=False))

    # ---- documents: the route's and the municipality table's links; plan.xlsx back with a bad mark ----
    docx_href = page.get_attribute("#route-head a[data-docs='docx']", "href")
    answer = http.get(docx_href)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/vnd.openxmlformats")
    school = http.get(page.get_attribute("#route-head a[data-docs='school']", "href"))
    assert school.status_code == 200 and school.headers["content-type"] == "application/zip"
    links = page.locator("#mun-table a[data-docs='municipality']")
    assert links.count() == sum(1 for m in shown if m["teachers_reached"] > 0) >= 1
    assert http.get(links.first.get_attribute("href")).status_code == 200
    from openpyxl import load_workbook

    workbook = load_workbook(io.BytesIO(http.get(f"/v1/plans/{plan_id}/export.xlsx").content))
    routes_sheet = workbook["Маршруты"]
    decision = [c.value for c in routes_sheet[1]].index("Решение") + 1
    routes_sheet.cell(2, decision).value = "удалить"
    marked = io.BytesIO()
    workbook.save(marked)
    plans_before = len(http.get("/v1/plans").json())
    page.set_input_files("#decisions-file", files=[{"name": "plan.xlsx", "buffer": marked.getvalue(),
                                                    "mimeType": "application/vnd.openxmlformats-officedocument."
                                                                "spreadsheetml.sheet"}])
    page.click("#decisions-button")
    page.wait_for_selector("#decisions-problems li[data-row='2'][data-column='Решение']")
    assert "План не изменён" in norm(page.text_content("#decisions-status"))
    assert len(http.get("/v1/plans").json()) == plans_before

    # ---- keyboard: every control on the way is reachable with Tab ------------------------------
    page.evaluate("window.scrollTo(0, 0); document.activeElement && document.activeElement.blur()")
    reached = set()
    for _ in range(120):
        page.keyboard.press("Tab")
        reached.add(page.evaluate("document.activeElement && (document.activeElement.id || "
                                  "document.activeElement.getAttribute('data-file') || '')"))
    assert {"bundle-file", "upload-button", "region-select", "param-time_limit_s", "start-button",
            "plan.xlsx", "assignments.csv", "teacher-input"} <= reached, reached

    # ---- a reload restores region, plan and results from the address -------------------------
    page.reload()
    page.wait_for_selector(f"body[data-results='{plan_id}']")
    assert page.input_value("#param-time_limit_s") == "5"
    http.close()
    print(f"\nweb e2e in {time.monotonic() - started:.1f} s; screenshots:", *map(str, shots), sep="\n  ")


def test_broken_bundle_shows_its_problems(page, server, artifacts) -> None:
    members = folder_members(SAMPLES / "tomsk-school-44")
    teachers = members["teachers.csv"].decode().splitlines()
    teachers[3] = teachers[3].replace("S0001", "S9999", 1)  # unknown school
    teachers[5] = re.sub(r",(\d+),(\d+),", r",-500,\2,", teachers[5], count=1)  # negative voucher
    members["teachers.csv"] = ("\n".join(teachers) + "\n").encode()
    diagnostics = members["diagnostics.csv"].decode().splitlines()
    diagnostics[2] = diagnostics[2].rsplit(",", 1)[0] + ",150"  # score outside 0..100
    members["diagnostics.csv"] = ("\n".join(diagnostics) + "\n").encode()
    del members["budgets.csv"]
    broken = zip_members(members)
    with server.client() as http:
        expected = http.post("/v1/regions", files={"file": ("broken.zip", broken)})
    assert expected.status_code == 422
    problems = expected.json()["problems"]
    assert len(problems) >= 4

    upload(page, "broken.zip", broken)
    page.wait_for_selector("#problems:not([hidden])")
    rows = page.locator("#problems-table tbody tr")
    assert rows.count() == len(problems)
    for i, problem in enumerate(problems):
        cells = [norm(c) for c in rows.nth(i).locator("td").all_text_contents()]
        assert cells[1] == problem["file"]
        assert cells[2] == ("—" if problem["row"] is None else ru_num(problem["row"], 0))
        assert cells[3] == (problem["column"] or "—")
        assert cells[4] == (norm(problem["value"]) if problem["value"] not in (None, "") else "—")
        assert cells[5] == norm(problem["message"])
    assert "не принят" in norm(page.text_content("#upload-status"))
    assert page.locator("#region-info").is_hidden()
    files = {p["file"] for p in problems}
    assert page.locator("#problems-filter option").count() == len(files) + 1
    path = shot(page, artifacts, "4-problems")
    page.select_option("#problems-filter", "teachers.csv")
    assert rows.count() == sum(1 for p in problems if p["file"] == "teachers.csv")
    print("\nscreenshot:", path)


def test_live_progress_and_cancel(page, server, artifacts) -> None:
    upload(page, "krymsky-district.zip", zip_folder(SAMPLES / "krymsky-district"))
    page.wait_for_selector("#region-info:not([hidden])")
    page.fill("#param-time_limit_s", "120")
    page.click("#start-button")
    page.wait_for_selector("#plan-status[data-status='running']")
    # the chart moves: points are added while the solver reports
    page.wait_for_function("Number(document.querySelector('#progress-chart svg').dataset.points) >= 4",
                           timeout=TIMEOUT_MS)
    assert page.is_enabled("#cancel-button") and page.is_disabled("#start-button")
    page.wait_for_selector("#progress-chart path.series-bound", state="attached", timeout=TIMEOUT_MS)  # the LP bound is proved
    first = int(page.get_attribute("#progress-chart svg", "data-points"))
    page.wait_for_function(f"Number(document.querySelector('#progress-chart svg').dataset.points) > {first}",
                           timeout=TIMEOUT_MS)
    path = shot(page, artifacts, "5-progress", "#plan")
    page.click("#cancel-button")
    page.wait_for_selector("#plan-status[data-status='cancelled']")
    plan_id = hash_ids(page)["plan"]
    with server.client() as http:
        assert http.get(f"/v1/plans/{plan_id}").json()["status"] == "cancelled"
    assert page.is_enabled("#start-button")
    assert page.locator("#results-body").is_hidden()
    print("\nscreenshot:", path)


# ------------------------------------------------------------------------------------------------
# a nation (section 4): regions tied by federal seats and money, planned as one (docs/nation.md)
# ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def nation_dir(tmp_path_factory) -> Path:
    from nation_oracle import random_nation

    return random_nation(4, tmp_path_factory.mktemp("web-nation") / "n", regions=3, teachers=6)


def upload_nation(page, name: str, content: bytes) -> None:
    page.set_input_files("#nation-file", files=[{"name": name, "mimeType": "application/zip", "buffer": content}])
    page.click("#nation-upload-button")


def test_nation_upload_plan_summary_and_files(page, server, artifacts, nation_dir) -> None:
    upload_nation(page, "nation.zip", zip_tree(nation_dir))
    page.wait_for_selector("#nation-info:not([hidden]) #nation-figures [data-key='federal_budget_rub']")
    nation_id = hash_ids(page)["nation"]
    http = server.client()
    nation = http.get(f"/v1/nations/{nation_id}").json()
    assert norm(page.text_content("#nation-name")) == nation["name"]
    for key in ("regions", "teachers", "schools", "federal_seats"):
        assert norm(page.text_content(f"#nation-figures [data-key='{key}'] .value")) == ru_num(nation[key], 0), key
    assert norm(page.text_content("#nation-figures [data-key='federal_budget_rub'] .value")) == \
        ru_rub(nation["federal_budget_rub"])
    assert nation_id in page.eval_on_selector_all("#nation-select option", "options => options.map(o => o.value)")

    # a bad time limit is named on the page and nothing is queued
    page.fill("#nation-time_limit_s", "ноль")
    page.click("#nation-start-button")
    page.wait_for_selector("#nation-plan-problems:not([hidden])")
    assert "Время расчёта страны" in norm(page.text_content("#nation-plan-problems"))
    assert not [p for p in http.get("/v1/plans").json() if p["nation_id"] == nation_id]

    page.fill("#nation-time_limit_s", "12")
    page.click("#nation-start-button")
    page.wait_for_selector("#nation-plan-status[data-status]")
    assert page.locator("#nation-plan-problems").is_hidden()
    # one progress row per region of regions.csv, in its order, while it runs and after
    assert [page.locator("#nation-progress-table tbody tr").nth(i).get_attribute("data-region")
            for i in range(3)] == [r["region_id"] for r in nation["region_list"]]
    page.wait_for_selector("#nation-plan-status[data-status='done']", timeout=300_000)
    page.wait_for_selector("body[data-nation-results]")
    plan_id = hash_ids(page)["nation-plan"]
    plan = http.get(f"/v1/plans/{plan_id}").json()
    assert plan["kind"] == "nation" and plan["nation_id"] == nation_id and plan["params"]["time_limit_s"] == 12
    summary = http.get(f"/v1/plans/{plan_id}/summary").json()
    assert norm(page.text_content("#nation-plan-status")).startswith("План страны: готов")
    for region in plan["progress"]["regions"]:  # the API's per-region pricing, as the table shows it
        row = page.locator(f"#nation-progress-table tr[data-region='{region['region_id']}']")
        assert row.get_attribute("data-rounds") == str(region["rounds"]) and region["rounds"] >= 1
        assert row.get_attribute("data-status") == (region["status"] or "")

    # the nation's figures: objective, proved bound, gap, federal seats and money used
    def headline(key: str) -> str:
        return norm(page.text_content(f"#nation-headline [data-key='{key}'] .value"))

    assert headline("objective") == ru_num(summary["objective"], 3)
    assert headline("bound") == ru_num(summary["bound"], 3)
    assert headline("gap") == ru_pct(summary["gap"])
    assert norm(page.text_content("#nation-progress-figures [data-key='gap'] .value")) == ru_pct(summary["gap"])
    sessions = summary["federal"]["sessions"]
    assert headline("federal_seats") == \
        f"{ru_num(sum(s['used'] for s in sessions), 0)} из {ru_num(sum(s['seats'] for s in sessions), 0)}"
    assert headline("federal_budget") == ru_rub(summary["federal"]["budget"]["used_rub"])
    assert page.locator("#nation-sessions-table tbody tr").count() == len(sessions)

    # one row per region, as /summary gives it, with the region's files
    rows = page.locator("#nation-regions-table tbody tr")
    assert rows.count() == len(summary["regions"]) == nation["regions"]
    names = {r["region_id"]: r["name"] for r in nation["region_list"]}
    quotas = {q["region_id"]: q for q in summary["federal"]["quotas"]}
    for i, region in enumerate(summary["regions"]):
        row = rows.nth(i)
        assert row.get_attribute("data-region") == region["region_id"]
        cells = [norm(c) for c in row.locator("th, td").all_text_contents()]
        quota = quotas.get(region["region_id"])
        assert cells[:7] == [f"{region['region_id']} {names[region['region_id']]}", ru_num(region["objective"], 3),
                             ru_num(region["need_total"], 2), ru_num(region["need_covered"], 2),
                             ru_pct(region["need_covered"] / region["need_total"]),
                             ru_num(region["teachers_reached"], 0),
                             f"{ru_rub(quota['used_rub'])} из {ru_rub(quota['amount_rub'])}" if quota else "—"]
        for name in ("plan.xlsx", "assignments.csv", "routes.csv", "clusters.csv", "summary.json"):
            answer = http.get(row.locator(f"a[data-file='{name}']").get_attribute("href"))
            assert answer.status_code == 200, (region["region_id"], name)
        region_summary = http.get(row.locator("a[data-file='summary.json']").get_attribute("href")).json()
        assert region_summary["objective"] == pytest.approx(region["objective"], abs=1e-6)
    assert sum(r["objective"] for r in summary["regions"]) == pytest.approx(summary["objective"], abs=1e-6)

    # nation.zip through the page's link: a valid zip, the same summary
    with page.expect_download() as download_info:
        page.click("#nation-downloads a[data-file='nation.zip']")
    saved = Path(download_info.value.path()).read_bytes()
    with zipfile.ZipFile(io.BytesIO(saved)) as archive:
        assert archive.testzip() is None
        assert json.loads(archive.read("summary.json")) == summary
        assert {f"regions/{r['region_id']}/plan.xlsx" for r in summary["regions"]} <= set(archive.namelist())
    path = shot(page, artifacts, "6-nation", "#nation")

    # a reload opens the nation and its plan again from the address
    page.reload()
    page.wait_for_selector(f"body[data-nation-results='{plan_id}']")
    assert page.locator("#nation-regions-table tbody tr").count() == len(summary["regions"])
    # a page opened afresh: the nation picked from the list shows its newest plan
    page.goto(server.url + "/")
    page.wait_for_selector("body[data-ready='1']")
    assert page.locator("#nation-info").is_hidden()
    page.select_option("#nation-select", nation_id)
    page.wait_for_selector(f"body[data-nation-results='{plan_id}']")
    assert norm(page.text_content("#nation-headline [data-key='gap'] .value")) == ru_pct(summary["gap"])
    http.close()
    print("\nscreenshot:", path)


def test_a_broken_nation_shows_its_problems_by_region_file_row_and_column(page, server, artifacts, nation_dir,
                                                                         tmp_path) -> None:
    import pandas as pd

    bad = tmp_path / "bad"
    shutil.copytree(nation_dir, bad)
    teachers = pd.read_csv(bad / "regions" / "R02" / "teachers.csv", dtype=str, keep_default_na=False)
    teachers.loc[1, "voucher_rub"] = "-5"
    teachers.to_csv(bad / "regions" / "R02" / "teachers.csv", index=False)
    sessions = pd.read_csv(bad / "federal_program_sessions.csv", dtype=str, keep_default_na=False)
    offline = int(sessions.index[sessions["region_id"] != ""][0])
    sessions.loc[offline, "region_id"] = "R99"
    sessions.to_csv(bad / "federal_program_sessions.csv", index=False)
    broken = zip_tree(bad)
    with server.client() as http:
        before = http.get("/v1/nations").json()
        expected = http.post("/v1/nations", files={"file": ("broken.zip", broken)})
    assert expected.status_code == 422
    problems = expected.json()["problems"]
    assert {("R02/teachers.csv", 3, "voucher_rub"), ("federal_program_sessions.csv", offline + 2, "region_id")} <= \
        {(p["file"], p["row"], p["column"]) for p in problems}

    upload_nation(page, "broken.zip", broken)
    page.wait_for_selector("#nation-problems:not([hidden])")
    rows = page.locator("#nation-problems-table tbody tr")
    assert rows.count() == len(problems)
    for i, problem in enumerate(problems):
        cells = [norm(c) for c in rows.nth(i).locator("td").all_text_contents()]
        region, _, file = problem["file"].rpartition("/")
        assert cells[1:5] == [region or "вся страна", file,
                              "—" if problem["row"] is None else ru_num(problem["row"], 0), problem["column"] or "—"]
        assert cells[6] == norm(problem["message"])
    assert "не принят" in norm(page.text_content("#nation-upload-status"))
    assert page.locator("#nation-info").is_hidden()
    # the region section's own list is untouched
    assert page.locator("#problems").is_hidden()
    path = shot(page, artifacts, "7-nation-problems", "#nation")
    page.select_option("#nation-problems-filter", "R02/teachers.csv")
    assert rows.count() == sum(1 for p in problems if p["file"] == "R02/teachers.csv") >= 1
    with server.client() as http:
        assert http.get("/v1/nations").json() == before
    print("\nscreenshot:", path)


def first_id(folder: Path, file: str, column: str) -> str:
    import pandas as pd

    return pd.read_csv(folder / file, dtype=str, keep_default_na=False)[column].iloc[0]


def plan_problem_rows(page, selector: str) -> list[list[str]]:
    """The rows of a plan form's problems table: parameter, line, value, message."""
    rows = page.locator(f"{selector} tbody tr")
    return [[norm(c) for c in rows.nth(i).locator("td").all_text_contents()] for i in range(rows.count())]


def test_a_nation_is_planned_with_the_region_forms_parameters(page, server, artifacts, nation_dir) -> None:
    """The nation's form has every parameter of the region's: what is typed is what the API stores, and the
    plan obeys it; «defaults» restores them; a plan opened again fills the form with its own."""
    from marshrut.engine.params import Params

    upload_nation(page, "nation.zip", zip_tree(nation_dir))
    page.wait_for_selector("#nation-info:not([hidden])")
    nation_id = hash_ids(page)["nation"]
    # the region's knobs, with the nation's own time limit
    assert page.input_value("#nation-time_limit_s") == "120"
    assert page.input_value("#nation-deficit_threshold") == "70"
    assert page.input_value("#nation-max_programs") == "2"
    assert norm(page.input_value("#nation-rub_per_point")) == "100 000"
    assert page.is_checked("#nation-mentor_from_other_school")
    assert norm(page.text_content("#nation-time_limit_s-hint")).startswith("На весь расчёт страны")
    # the region's form is its own: it keeps its default time
    assert page.input_value("#param-time_limit_s") == "60"

    teacher = first_id(nation_dir, "regions/R02/teachers.csv", "teacher_id")
    mentor = first_id(nation_dir, "regions/R02/mentors.csv", "mentor_id")
    page.fill("#nation-time_limit_s", "12")
    page.fill("#nation-deficit_threshold", "65,5")
    page.fill("#nation-max_programs", "1")
    page.uncheck("#nation-mentor_from_other_school")
    page.click("#nation-plan-form details.refs summary")
    page.fill("#nation-forbidden", f"R02; {teacher}; mentor; {mentor}")
    page.click("#nation-start-button")
    page.wait_for_selector("#nation-plan-status[data-status='done']", timeout=300_000)
    page.wait_for_selector("body[data-nation-results]")
    plan_id = hash_ids(page)["nation-plan"]
    http = server.client()
    plan = http.get(f"/v1/plans/{plan_id}").json()
    forbidden = [{"region_id": "R02", "teacher_id": teacher, "kind": "mentor", "resource_id": mentor}]
    expected = {**Params(time_limit_s=12, deficit_threshold=65.5, max_programs=1,
                         mentor_from_other_school=False).model_dump(mode="json"), "pinned": [], "forbidden": forbidden}
    assert plan["nation_id"] == nation_id and plan["params"] == expected

    # the plan obeys them in every region: one program session at most per teacher, the forbidden pair absent
    import pandas as pd

    programs = 0
    for region in http.get(f"/v1/plans/{plan_id}/summary").json()["regions"]:
        answer = http.get(f"/v1/plans/{plan_id}/regions/{region['region_id']}/files/assignments.csv")
        assert answer.status_code == 200
        rows = pd.read_csv(io.BytesIO(answer.content), dtype=str, keep_default_na=False)
        per_teacher = rows[rows["kind"] == "program"].groupby("teacher_id").size()
        assert max(per_teacher.tolist(), default=0) <= 1, (region["region_id"], per_teacher.to_dict())
        programs += int(per_teacher.sum())
        if region["region_id"] == "R02":
            assert not ((rows["teacher_id"] == teacher) & (rows["resource_id"] == mentor)).any()
    assert programs >= 1, "the nation's teachers take programs: the limit is met, not avoided"
    path = shot(page, artifacts, "9-nation-params", "#nation-plan-form")

    # «defaults» puts every field back; the plan opened again fills them with its own
    page.click("#nation-defaults-button")
    assert [page.input_value(f"#nation-{key}") for key in ("time_limit_s", "deficit_threshold", "max_programs")] == \
        ["120", "70", "2"]
    assert page.is_checked("#nation-mentor_from_other_school") and page.input_value("#nation-forbidden") == ""
    page.reload()
    page.wait_for_selector(f"body[data-nation-results='{plan_id}']")
    assert [page.input_value(f"#nation-{key}") for key in ("time_limit_s", "deficit_threshold", "max_programs")] == \
        ["12", "65,5", "1"]
    assert not page.is_checked("#nation-mentor_from_other_school")
    assert page.input_value("#nation-forbidden") == f"R02; {teacher}; mentor; {mentor}"
    http.close()
    print("\nscreenshot:", path)


def test_a_nations_bad_parameters_are_named_by_field_and_line(page, server, artifacts, nation_dir) -> None:
    """A bad number and a bad line are named on the page and nothing is posted; the API's problems (an unknown
    region, an unknown teacher of a region) are named by the field and the line of the text box."""
    upload_nation(page, "nation.zip", zip_tree(nation_dir))
    page.wait_for_selector("#nation-info:not([hidden])")
    nation_id = hash_ids(page)["nation"]
    http = server.client()

    def stored() -> list:
        return [p for p in http.get("/v1/plans").json() if p["nation_id"] == nation_id]

    page.click("#nation-plan-form details.refs summary")
    page.fill("#nation-deficit_threshold", "семьдесят")
    page.fill("#nation-max_programs", "1,5")
    page.fill("#nation-pinned", "R01; 02380; mentor")
    page.click("#nation-start-button")
    page.wait_for_selector("#nation-plan-problems:not([hidden])")
    rows = plan_problem_rows(page, "#nation-plan-problems")
    assert [row[:3] for row in rows] == [["Порог дефицита, балл", "—", "семьдесят"],
                                         ["Программ ДПП на педагога, не больше", "—", "1,5"],
                                         ["Обязательно включить", "1", "R01; 02380; mentor"]]
    assert "нужно число" in rows[0][3] and "целое" in rows[1][3] and "регион; педагог; вид; ресурс" in rows[2][3]
    assert stored() == []
    # the region's form is untouched by the nation's problems
    assert page.locator("#plan-problems").is_hidden()

    # lines of three regions' entries; the second names a region the nation does not have
    r01 = first_id(nation_dir, "regions/R01/teachers.csv", "teacher_id")
    r01_mentor = first_id(nation_dir, "regions/R01/mentors.csv", "mentor_id")
    r02 = first_id(nation_dir, "regions/R02/teachers.csv", "teacher_id")
    r02_mentor = first_id(nation_dir, "regions/R02/mentors.csv", "mentor_id")
    page.fill("#nation-deficit_threshold", "70")
    page.fill("#nation-max_programs", "1")
    page.fill("#nation-pinned", f"R01; {r01}; mentor; {r01_mentor}\nR99; {r01}; mentor; {r01_mentor}")
    page.click("#nation-start-button")
    page.wait_for_function("document.querySelector('#nation-plan-problems td') && "
                           "document.querySelector('#nation-plan-problems').textContent.includes('R99')")
    assert plan_problem_rows(page, "#nation-plan-problems") == \
        [["Обязательно включить (region_id)", "2", "R99", "неизвестный регион (нет в regions.csv)"]]
    assert stored() == []

    # an unknown teacher on the third line, after a line of another region: named by its line, not its index
    page.fill("#nation-pinned", f"R01; {r01}; mentor; {r01_mentor}\nR02; {r02}; mentor; {r02_mentor}\n"
                                f"R01; НЕТ-ТАКОГО; mentor; {r01_mentor}")
    page.click("#nation-start-button")
    page.wait_for_function("document.querySelector('#nation-plan-problems').textContent.includes('НЕТ-ТАКОГО')")
    rows = plan_problem_rows(page, "#nation-plan-problems")
    assert [row[:3] for row in rows] == [["Обязательно включить (teacher_id)", "3", "НЕТ-ТАКОГО"]]
    assert "R01" in rows[0][3]
    assert stored() == []
    path = shot(page, artifacts, "10-nation-param-problems", "#nation")
    http.close()
    print("\nscreenshot:", path)


def test_a_nations_plan_is_followed_region_by_region_and_cancelled(page, server, artifacts, tmp_path) -> None:
    """The `russia` preset at 0.2% (85 regions, about 2,100 teachers): long enough to be seen running."""
    from marshrut.datasets.nation import generate_nation

    folder = generate_nation(tmp_path / "russia", scale=0.002, seed=1)
    upload_nation(page, "russia.zip", zip_tree(folder))
    page.wait_for_selector("#nation-info:not([hidden])")
    assert norm(page.text_content("#nation-figures [data-key='regions'] .value")) == "85"
    page.fill("#nation-time_limit_s", "300")
    page.click("#nation-start-button")
    page.wait_for_selector("#nation-plan-status[data-status='running']")
    assert page.get_attribute("#nation-plan-status", "aria-live") == "polite"
    assert page.locator("#nation-progress-table tbody tr").count() == 85
    # regions are priced one after another: their rows fill in while the plan runs
    page.wait_for_function("document.querySelectorAll(\"#nation-progress-table tr[data-status='OPTIMAL'], "
                           "#nation-progress-table tr[data-status='FEASIBLE']\").length >= 3", timeout=TIMEOUT_MS)
    assert page.is_enabled("#nation-cancel-button") and page.is_disabled("#nation-start-button")
    plan_id = hash_ids(page)["nation-plan"]
    shown = {row.get_attribute("data-region"): int(row.get_attribute("data-rounds") or 0)
             for row in page.locator("#nation-progress-table tbody tr").all()}
    with server.client() as http:  # read after the page: a region's rounds only grow
        running = http.get(f"/v1/plans/{plan_id}").json()
    assert running["status"] == "running"
    rounds = {r["region_id"]: r["rounds"] for r in running["progress"]["regions"]}
    assert set(shown) == set(rounds) and sum(1 for n in shown.values() if n >= 1) >= 3
    assert all(rounds[region] >= n for region, n in shown.items())
    path = shot(page, artifacts, "8-nation-progress", "#nation-progress")
    page.click("#nation-cancel-button")
    page.wait_for_selector("#nation-plan-status[data-status='cancelled']")
    with server.client() as http:
        assert http.get(f"/v1/plans/{plan_id}").json()["status"] == "cancelled"
    assert page.is_enabled("#nation-start-button") and page.is_disabled("#nation-cancel-button")
    assert page.locator("#nation-results").is_hidden()
    print("\nscreenshot:", path)
