"""A nation (SPEC §7): bad nations reported whole, the national plan against an independent exact MILP
and an independent checker, solved in this process (the Ray path is in test_nation_ray.py)."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from marshrut.cli import app
from marshrut.engine.nation import NationError, is_nation, load_nation, nation_params
from marshrut.engine.nation_plan import write_nation_plan
from marshrut.engine.nation_solve import FederalPrices, LocalBackend, Master, solve_nation
from marshrut.engine.problems import InputError
from nation_oracle import check_nation_plan, nation_exact_optimum, random_nation

runner = CliRunner()


@pytest.fixture(scope="module")
def nation_dir(tmp_path_factory) -> Path:
    return random_nation(4, tmp_path_factory.mktemp("nation") / "n", regions=3, teachers=6)


def _edit(folder: Path, file: str, edit) -> None:
    frame = pd.read_csv(folder / file, dtype=str, keep_default_na=False)
    edit(frame).to_csv(folder / file, index=False)


def _set(frame, row, column, value):
    frame.loc[row, column] = value
    return frame


def test_a_valid_nation_reads(nation_dir):
    nation = load_nation(nation_dir)
    assert nation.region_ids == ("R01", "R02", "R03")
    assert is_nation(nation_dir) and not is_nation(nation_dir / "regions" / "R01")
    assert nation.counts()["teachers"] == 18


def test_every_problem_of_a_bad_nation_at_once(nation_dir, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(nation_dir, bad)
    sessions = pd.read_csv(bad / "federal_program_sessions.csv", dtype=str, keep_default_na=False)
    programs = pd.read_csv(bad / "federal_programs.csv", dtype=str, keep_default_na=False)
    online = programs.loc[programs["format"] == "online", "program_id"].iloc[0]
    offline = programs.loc[programs["format"] == "offline", "program_id"].iloc[0]
    online_row = int(sessions.index[sessions["program_id"] == online][0])
    offline_rows = sessions.index[sessions["program_id"] == offline]
    regional_registry = pd.read_csv(bad / "regions" / "R01" / "programs.csv", dtype=str)["registry_id"].iloc[0]

    def sessions_edit(frame):
        frame.loc[online_row, "region_id"] = "R01"  # an online session with a region
        frame.loc[offline_rows[0], "municipality_id"] = ""  # an offline one without a municipality
        frame.loc[offline_rows[1], "region_id"] = "R99"  # a region not in regions.csv
        return frame

    _edit(bad, "federal_program_sessions.csv", sessions_edit)
    _edit(bad, "federal_programs.csv", lambda f: _set(f, 0, "registry_id", regional_registry))
    _edit(bad, "federal_budget.csv", lambda f: pd.concat(
        [f[f["scope"] != "federal"], pd.DataFrame([("region", "R42", "1000")], columns=f.columns)]))
    _edit(bad, "federal_program_competencies.csv", lambda f: _set(f, 0, "competency_id", "C99"))
    _edit(bad / "regions" / "R02", "teachers.csv", lambda f: _set(f, 1, "voucher_rub", "-5"))
    meta = json.loads((bad / "regions" / "R03" / "region.json").read_text(encoding="utf-8"))
    meta["period_end"] = "2027-07-31"
    (bad / "regions" / "R03" / "region.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(NationError) as caught:
        load_nation(bad)
    found = {(p.file, p.code, p.row, p.column) for p in caught.value.problems}
    expected = {
        ("federal_program_sessions.csv", "online_with_place", online_row + 2, "region_id"),
        ("federal_program_sessions.csv", "offline_without_place", int(offline_rows[0]) + 2, "municipality_id"),
        ("federal_program_sessions.csv", "unknown_id", int(offline_rows[1]) + 2, "region_id"),
        ("federal_programs.csv", "duplicate_id", 2, "registry_id"),
        ("federal_budget.csv", "missing_federal_budget", None, "scope"),
        ("federal_program_competencies.csv", "unknown_id", 2, "competency_id"),
        ("R02/teachers.csv", "negative", 3, "voucher_rub"),
        ("R03/region.json", "period_mismatch", None, "period_start"),
    }
    assert expected <= found, sorted(found)
    # the region row naming an unknown region
    assert any(p.file == "federal_budget.csv" and p.code == "unknown_id" and p.value == "R42"
               for p in caught.value.problems)


def test_a_bad_nation_through_the_cli_exits_2(nation_dir, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(nation_dir, bad)
    (bad / "federal_budget.csv").unlink()
    result = runner.invoke(app, ["plan", str(bad), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert "federal_budget.csv" in result.output
    assert not (tmp_path / "out").exists()


def test_validate_takes_a_nation(nation_dir, tmp_path):
    assert runner.invoke(app, ["validate", str(nation_dir)]).exit_code == 0
    bad = tmp_path / "bad"
    shutil.copytree(nation_dir, bad)
    _edit(bad / "regions" / "R01", "teachers.csv", lambda f: _set(f, 0, "max_hours", "много"))
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 2 and "R01/teachers.csv" in result.output and "max_hours" in result.output


def test_pinned_entries_of_a_nation_need_a_region(nation_dir):
    nation = load_nation(nation_dir)
    with pytest.raises(InputError) as caught:
        nation_params({"pinned": [{"teacher_id": "x", "kind": "program", "resource_id": "FS1-1"},
                                  {"teacher_id": "x", "kind": "program", "resource_id": "FS1-1",
                                   "region_id": "R77"}]}, nation.region_ids)
    assert [p.code for p in caught.value.problems] == ["missing_value", "unknown_id"]


@pytest.mark.parametrize("seed", [0, 4, 5, 6, 7])
def test_national_plan_is_optimal_and_valid(seed, tmp_path):
    folder = random_nation(seed, tmp_path / "n", regions=3, teachers=6)
    nation = load_nation(folder)
    params = nation_params({"time_limit_s": 30}, nation.region_ids)
    result = solve_nation(nation, params)
    summary = write_nation_plan(nation, params, result, tmp_path / "out")
    optimum = nation_exact_optimum(folder)
    assert check_nation_plan(folder, {}, tmp_path / "out") == []
    assert summary["objective"] == pytest.approx(optimum, abs=1e-6)
    assert summary["bound"] >= optimum - 1e-7
    assert result.bound >= optimum - 1e-7


def test_scarce_federal_rows_bind_and_are_kept(tmp_path):
    """One online federal seat, wanted by every region: exactly one teacher of the nation gets it."""
    folder = random_nation(11, tmp_path / "n", regions=3, teachers=8, federal_programs=1, sessions_per_program=1)
    _edit(folder, "federal_programs.csv", lambda f: _set(_set(f, 0, "format", "online"), 0, "price_rub", "1000"))
    _edit(folder, "federal_program_sessions.csv",
          lambda f: _set(_set(_set(f, 0, "seats", "1"), 0, "region_id", ""), 0, "municipality_id", ""))
    _edit(folder, "federal_program_competencies.csv", lambda f: _set(f, 0, "weight", "1"))
    nation = load_nation(folder)
    params = nation_params({"time_limit_s": 30}, nation.region_ids)
    result = solve_nation(nation, params)
    summary = write_nation_plan(nation, params, result, tmp_path / "out")
    assert check_nation_plan(folder, {}, tmp_path / "out") == []
    assert summary["federal"]["sessions"][0]["used"] == 1
    assert summary["objective"] == pytest.approx(nation_exact_optimum(folder), abs=1e-6)
    # The planner's workbook of the region that got the seat says it is paid federally, at its price.
    import openpyxl

    (row,) = [(path.parent, r) for path in (tmp_path / "out" / "regions").glob("*/assignments.csv")
              for r in pd.read_csv(path, dtype=str).to_dict("records") if r["funded_by"] == "federal"]
    sheet = openpyxl.load_workbook(row[0] / "plan.xlsx", read_only=True)["Назначения"]
    cells = [r for r in sheet.iter_rows(values_only=True) if r[2] == row[1]["resource_id"]]
    assert len(cells) == 1 and cells[0][10] == "Федеральные средства" and cells[0][11] == "federal"
    assert cells[0][9] == 1000


def test_pinned_federal_assignment_is_kept(nation_dir, tmp_path):
    nation = load_nation(nation_dir)
    fed = nation.federal
    # An online federal session needs no trip and no voucher: pinned to a teacher with the hours, it is allowed.
    session = next(s for s in range(len(fed.session_ids)) if fed.session_region[s] == -1)
    hours = fed.hours[fed.session_program[session]]
    region = nation.regions[1]
    teacher = next(t for t, h in zip(region.teachers.ids, region.teachers.max_hours) if h >= hours)
    pin = {"teacher_id": teacher, "kind": "program", "resource_id": fed.session_ids[session], "region_id": "R02"}
    raw = {"time_limit_s": 30, "pinned": [pin]}
    params = nation_params(raw, nation.region_ids)
    result = solve_nation(nation, params)
    write_nation_plan(nation, params, result, tmp_path / "out")
    rows = pd.read_csv(tmp_path / "out" / "regions" / "R02" / "assignments.csv", dtype=str)
    assert ((rows["teacher_id"] == teacher) & (rows["resource_id"] == fed.session_ids[session])
            & (rows["funded_by"] == "federal")).any()
    assert check_nation_plan(nation_dir, raw, tmp_path / "out") == []


def test_a_zipped_nation_reads_like_its_folder(nation_dir, tmp_path):
    archive = tmp_path / "nation.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for file in nation_dir.rglob("*"):
            if file.is_file():
                z.write(file, "n/" + file.relative_to(nation_dir).as_posix())
    assert is_nation(archive)
    assert load_nation(archive).counts() == load_nation(nation_dir).counts()


def test_planning_one_region_never_imports_ray(tmp_path):
    import subprocess
    import sys

    from oracle import random_bundle

    bundle = random_bundle(3, tmp_path / "region", teachers=5)
    code = ("import sys; from marshrut.cli import app; from typer.testing import CliRunner; "
            f"r = CliRunner().invoke(app, ['plan', {str(bundle)!r}, '--out', {str(tmp_path / 'out')!r}, "
            "'--time-limit', '10', '--quiet']); assert r.exit_code == 0, r.output; "
            "print('ray' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False"


def test_the_russia_preset_is_a_valid_nation(tmp_path):
    from marshrut.datasets.nation import RUSSIA_TEACHERS, generate_nation

    folder = generate_nation(tmp_path / "russia", scale=0.002, seed=1)
    nation = load_nation(folder)  # raises with every problem if the generator wrote a bad nation
    counts = nation.counts()
    assert counts["regions"] == 85
    assert counts["teachers"] == round(RUSSIA_TEACHERS * 0.002)  # in proportion to population, 20 at least
    fed = nation.federal
    offline = fed.session_region >= 0
    assert offline.any() and (~offline).any()
    assert 0 < fed.budget_rub < int((fed.seats * fed.session_price).sum())  # the budget does not pay for every seat
    assert (fed.quota_rub >= 0).sum() >= 20
    moscow = nation.region_names.index("г. Москва")
    assert len(nation.regions[moscow].teachers) == max(len(r.teachers) for r in nation.regions)


def _scarce_nation(tmp_path, seed: int = 11) -> Path:
    """One online federal seat wanted by every region, the rest of the federal layer as drawn."""
    folder = random_nation(seed, tmp_path / "n", regions=3, teachers=8, federal_programs=1, sessions_per_program=2)
    _edit(folder, "federal_programs.csv", lambda f: _set(_set(f, 0, "format", "online"), 0, "price_rub", "1000"))
    _edit(folder, "federal_program_sessions.csv",
          lambda f: _set(_set(_set(f, 0, "seats", "1"), 0, "region_id", ""), 0, "municipality_id", ""))
    _edit(folder, "federal_program_competencies.csv", lambda f: _set(f, 0, "weight", "1"))
    return folder


def _uses(column, n_sessions: int) -> np.ndarray:
    return np.bincount(column.sessions.astype(np.int64), minlength=n_sessions)


def test_the_allotment_round_keeps_each_region_within_its_seats_and_money(tmp_path):
    """Regions priced at zero prices each take the one seat of the first session. From a national plan with no
    federal assignment, the allotment gives out extra seats that the federal rows can pay for even if all are
    taken; re-solved within their allotments, no region uses a seat it was not given, the federal rows hold
    exactly, and no region is worse than its plan."""
    folder = _scarce_nation(tmp_path, seed=13)
    nation = load_nation(folder)
    fed = nation.federal
    params = nation_params({"time_limit_s": 30}, nation.region_ids)
    backend = LocalBackend(nation, params)
    master = Master(nation)
    n_sessions = len(fed.session_ids)
    pricings = sorted(backend.price_all(FederalPrices.zero(n_sessions, len(nation.regions)), 30, 0.0),
                      key=lambda p: p.region)
    wishes = [p.columns[0] for p in pricings]
    assert sum(_uses(c, n_sessions) for c in wishes)[0] > 1  # each region alone takes the one seat
    without_federal = [next(c for c in p.columns if len(c.sessions) == 0) for p in pricings]
    allotments = master.allotments(without_federal, wishes)
    given = sum(_uses(a.column, n_sessions) + a.extra for a in allotments)
    assert given.sum() > 0 and (given <= fed.seats).all()
    paid = [int(((_uses(a.column, n_sessions) + a.extra) * fed.session_price).sum()) for a in allotments]
    assert sum(paid) <= fed.budget_rub
    assert all(fed.quota_rub[r] < 0 or paid[r] <= fed.quota_rub[r] for r in range(len(nation.regions)))
    again = [p.columns[0] for p in sorted(backend.allot_all(allotments, 30), key=lambda p: p.region)]
    assert master.fits(again)
    for allotment, after in zip(allotments, again):
        assert (_uses(after, n_sessions) <= _uses(allotment.column, n_sessions) + allotment.extra).all()
        assert after.value >= allotment.column.value - 1e-9
    assert sum(c.value for c in again) > sum(c.value for c in without_federal)  # the extra seats were taken


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_a_plan_made_by_the_allotment_round_is_valid_and_bounded(seed, tmp_path):
    """One pricing round, then the allotment round: the plan obeys every rule (the independent checker), its
    objective is at most the exact optimum and the bound at least it."""
    folder = _scarce_nation(tmp_path, seed)
    nation = load_nation(folder)
    params = nation_params({"time_limit_s": 30}, nation.region_ids)
    result = solve_nation(nation, params, max_rounds=1)
    summary = write_nation_plan(nation, params, result, tmp_path / "out")
    optimum = nation_exact_optimum(folder)
    assert check_nation_plan(folder, {}, tmp_path / "out") == []
    assert summary["federal"]["sessions"][0]["used"] <= 1
    assert summary["objective"] <= optimum + 1e-6
    assert result.bound >= optimum - 1e-7 and summary["bound"] >= optimum - 1e-7
    assert summary["objective"] == pytest.approx(result.objective, abs=1e-6)
