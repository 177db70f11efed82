"""Bundle reading and validation: every kind of bad input, one case per row, through the CLI."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from marshrut.engine import BundleError, load_bundle, load_upload
from marshrut.cli import app
from oracle import random_bundle

runner = CliRunner()


@pytest.fixture(scope="module")
def valid_bundle(tmp_path_factory) -> Path:
    return random_bundle(7, tmp_path_factory.mktemp("valid") / "bundle", teachers=12)


def _edit_csv(folder: Path, file: str, edit) -> None:
    frame = pd.read_csv(folder / file, dtype=str, keep_default_na=False)
    frame = edit(frame)
    frame.to_csv(folder / file, index=False)


def _set(file, column, value, row=0):
    def edit(folder: Path) -> None:
        def change(frame):
            frame.loc[row, column] = value
            return frame
        _edit_csv(folder, file, change)
    return edit


def _write_bytes(file, data: bytes):
    def edit(folder: Path) -> None:
        (folder / file).write_bytes(data)
    return edit


def _remove_file(file):
    def edit(folder: Path) -> None:
        (folder / file).unlink()
    return edit


def _drop_column(file, column):
    def edit(folder: Path) -> None:
        _edit_csv(folder, file, lambda f: f.drop(columns=[column]))
    return edit


def _duplicate_first_row(file):
    def edit(folder: Path) -> None:
        _edit_csv(folder, file, lambda f: pd.concat([f, f.iloc[[0]]], ignore_index=True))
    return edit


def _session_dates(file, start, end):
    def edit(folder: Path) -> None:
        def change(frame):
            frame.loc[0, "start"], frame.loc[0, "end"] = start, end
            return frame
        _edit_csv(folder, file, change)
    return edit


def _cp1251_teachers(folder: Path) -> None:
    text = (folder / "teachers.csv").read_text(encoding="utf-8")
    lines = text.splitlines()
    lines[1] = lines[1] + ",Учитель"
    lines[0] = lines[0] + ",note"
    (folder / "teachers.csv").write_bytes(("\n".join(lines) + "\n").encode("cp1251"))


def _online_session_with_place(folder: Path) -> None:
    programs = pd.read_csv(folder / "programs.csv", dtype=str, keep_default_na=False)
    sessions = pd.read_csv(folder / "program_sessions.csv", dtype=str, keep_default_na=False)
    municipality = pd.read_csv(folder / "municipalities.csv", dtype=str)["municipality_id"].iloc[0]
    online = set(programs.loc[programs["format"] == "online", "program_id"])
    if not online:
        programs.loc[0, "format"] = "online"
        online = {programs.loc[0, "program_id"]}
        programs.to_csv(folder / "programs.csv", index=False)
    sessions.loc[sessions["program_id"].isin(online), "municipality_id"] = ""
    row = sessions.index[sessions["program_id"].isin(online)][0]
    sessions.loc[row, "municipality_id"] = municipality
    sessions.to_csv(folder / "program_sessions.csv", index=False)


def _offline_session_without_place(folder: Path) -> None:
    programs = pd.read_csv(folder / "programs.csv", dtype=str, keep_default_na=False)
    sessions = pd.read_csv(folder / "program_sessions.csv", dtype=str, keep_default_na=False)
    programs.loc[programs["program_id"] == sessions.loc[0, "program_id"], "format"] = "offline"
    sessions.loc[sessions["program_id"] == sessions.loc[0, "program_id"], "municipality_id"] = \
        pd.read_csv(folder / "municipalities.csv", dtype=str)["municipality_id"].iloc[0]
    sessions.loc[0, "municipality_id"] = ""
    programs.to_csv(folder / "programs.csv", index=False)
    sessions.to_csv(folder / "program_sessions.csv", index=False)


def _no_region_budget(folder: Path) -> None:
    _edit_csv(folder, "budgets.csv", lambda f: f[f["scope"] != "region"])


def _two_region_budgets(folder: Path) -> None:
    _edit_csv(folder, "budgets.csv", lambda f: pd.concat([f, f[f["scope"] == "region"]], ignore_index=True))


def _session_id_in_both(folder: Path) -> None:
    site = pd.read_csv(folder / "site_sessions.csv", dtype=str, keep_default_na=False)
    _set("program_sessions.csv", "session_id", site.loc[0, "session_id"])(folder)


def _bad_region_json(folder: Path) -> None:
    (folder / "region.json").write_text('{"name": "x", "period_start": "2026-13-01"', encoding="utf-8")


def _period_reversed(folder: Path) -> None:
    region = json.loads((folder / "region.json").read_text(encoding="utf-8"))
    region["period_start"], region["period_end"] = region["period_end"], region["period_start"]
    (folder / "region.json").write_text(json.dumps(region), encoding="utf-8")


# (case id, edit of a valid bundle, file named in the report, row named (None: no row), problem code)
BAD_INPUTS = [
    ("missing file", _remove_file("schools.csv"), "schools.csv", None, "missing_file"),
    ("missing region.json", _remove_file("region.json"), "region.json", None, "missing_file"),
    ("missing column", _drop_column("teachers.csv", "max_hours"), "teachers.csv", None, "missing_column"),
    ("empty file", _write_bytes("mentors.csv", b""), "mentors.csv", None, "empty_file"),
    ("header only where rows are needed", _write_bytes("competencies.csv", b"competency_id,name,group\n"),
     "competencies.csv", None, "empty_file"),
    ("unreadable bytes", _write_bytes("roads.csv", b"\x00\x01\x02binary\xff"), "roads.csv", None, "binary_file"),
    ("wrong encoding (cp1251)", _cp1251_teachers, "teachers.csv", 2, "encoding"),
    ("broken JSON", _bad_region_json, "region.json", 1, "bad_json"),
    ("period reversed", _period_reversed, "region.json", None, "bad_range"),
    ("unknown id", _set("teachers.csv", "school_id", "NO-SUCH-SCHOOL", 2), "teachers.csv", 4, "unknown_id"),
    ("duplicate id", _duplicate_first_row("schools.csv"), "schools.csv", None, "duplicate_id"),
    ("duplicate diagnostics pair", _duplicate_first_row("diagnostics.csv"), "diagnostics.csv", None,
     "duplicate_pair"),
    ("empty id", _set("teachers.csv", "teacher_id", ""), "teachers.csv", 2, "missing_value"),
    ("negative number", _set("mentors.csv", "capacity", "-1"), "mentors.csv", 2, "negative"),
    ("non-numeric number", _set("teachers.csv", "voucher_rub", "много"), "teachers.csv", 2, "not_a_number"),
    ("fractional roubles", _set("site_sessions.csv", "cost_rub", "100.5"), "site_sessions.csv", 2, "not_integer"),
    ("huge number", _set("teachers.csv", "voucher_rub", "1e300"), "teachers.csv", 2, "too_large"),
    ("score above 100", _set("diagnostics.csv", "score", "101"), "diagnostics.csv", 2, "out_of_range"),
    ("score below 0", _set("diagnostics.csv", "score", "-3"), "diagnostics.csv", 2, "out_of_range"),
    ("weight zero", _set("mentor_competencies.csv", "weight", "0"), "mentor_competencies.csv", 2, "out_of_range"),
    ("weight above 1", _set("program_competencies.csv", "weight", "1.5"), "program_competencies.csv", 2,
     "out_of_range"),
    ("start after end", _session_dates("site_sessions.csv", "2099-01-10", "2099-01-01"), "site_sessions.csv", 2,
     "bad_range"),
    ("session outside the period", _session_dates("program_sessions.csv", "1999-01-01", "1999-01-02"),
     "program_sessions.csv", 2, "outside_period"),
    ("bad date", _set("site_sessions.csv", "start", "01.09.2026"), "site_sessions.csv", 2, "bad_date"),
    ("bad 0/1 flag", _set("schools.csv", "low_results", "да"), "schools.csv", 2, "bad_value"),
    ("bad role", _set("teachers.csv", "role", "director"), "teachers.csv", 2, "bad_value"),
    ("online session with a municipality", _online_session_with_place, "program_sessions.csv", None,
     "online_with_place"),
    ("offline session without a municipality", _offline_session_without_place, "program_sessions.csv", 2,
     "offline_without_place"),
    ("missing region budget", _no_region_budget, "budgets.csv", None, "missing_region_budget"),
    ("two region budgets", _two_region_budgets, "budgets.csv", None, "duplicate_region_budget"),
    ("session id in both session files", _session_id_in_both, "program_sessions.csv", 2, "duplicate_id"),
    ("last training date not a date", _set("teachers.csv", "last_training_date", "31.05.2024", 1), "teachers.csv",
     3, "bad_date"),
    ("last training date after the period", _set("teachers.csv", "last_training_date", "2099-01-01", 1),
     "teachers.csv", 3, "after_period"),
    ("control characters in an id", _set("teachers.csv", "teacher_id", "T\x07\x1b[31m"), "teachers.csv", 2,
     "control_chars"),
]


@pytest.mark.parametrize("case, edit, file, row, code", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_reported_with_exit_2(valid_bundle, tmp_path, case, edit, file, row, code):
    folder = tmp_path / "bundle"
    shutil.copytree(valid_bundle, folder)
    edit(folder)
    with pytest.raises(BundleError) as caught:
        load_bundle(folder)
    matching = [p for p in caught.value.problems if p.file == file and p.code == code]
    assert matching, f"{case}: expected {code} in {file}, got {[str(p) for p in caught.value.problems]}"
    if row is not None:
        assert any(p.row == row for p in matching), [str(p) for p in matching]
    out = tmp_path / "plan"
    result = runner.invoke(app, ["plan", str(folder), "--out", str(out), "--time-limit", "1"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert file in result.output
    assert not out.exists(), "nothing is written for a bad bundle"
    validate = runner.invoke(app, ["validate", str(folder)])
    assert validate.exit_code == 2 and file in validate.output


def test_every_problem_is_reported_at_once(valid_bundle, tmp_path):
    folder = tmp_path / "bundle"
    shutil.copytree(valid_bundle, folder)
    _set("diagnostics.csv", "score", "150", 0)(folder)
    _set("mentors.csv", "capacity", "-2", 0)(folder)
    _remove_file("roads.csv")(folder)
    with pytest.raises(BundleError) as caught:
        load_bundle(folder)
    files = {p.file for p in caught.value.problems}
    assert {"diagnostics.csv", "mentors.csv", "roads.csv"} <= files


def test_zip_and_xlsx_read_like_the_folder(valid_bundle, tmp_path):
    from oracle import read_bundle

    folder_region = load_bundle(valid_bundle)
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in sorted(valid_bundle.iterdir()):
            z.write(f, f"region/{f.name}")
    zipped = load_bundle(archive)
    workbook = tmp_path / "bundle.xlsx"
    frames = read_bundle(valid_bundle)
    with pd.ExcelWriter(workbook) as writer:
        region = json.loads((valid_bundle / "region.json").read_text(encoding="utf-8"))
        pd.DataFrame({"key": list(region), "value": list(region.values())}).to_excel(writer, sheet_name="region",
                                                                                     index=False)
        for f in sorted(valid_bundle.glob("*.csv")):
            pd.read_csv(f, dtype=str, keep_default_na=False).to_excel(writer, sheet_name=f.stem, index=False)
    assert frames  # the oracle reads the same folder
    from_xlsx = load_bundle(workbook)
    for other in (zipped, from_xlsx):
        assert other.counts() == folder_region.counts()
        assert other.teachers.ids == folder_region.teachers.ids
        assert (other.travel_minutes == folder_region.travel_minutes).all()
        assert ((other.teachers.scores == folder_region.teachers.scores)
                | (other.teachers.scores != other.teachers.scores)).all()
    assert load_upload(archive.read_bytes(), "bundle.zip").counts() == folder_region.counts()


def test_zip_with_path_outside_the_archive_is_refused(valid_bundle, tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for f in sorted(valid_bundle.iterdir()):
            z.write(f, f.name)
        z.writestr("../../evil.csv", "a,b\n1,2\n")
    with pytest.raises(BundleError) as caught:
        load_upload(buffer.getvalue(), "evil.zip")
    assert any(p.code == "unsafe_path" for p in caught.value.problems)


def test_zip_bomb_is_refused(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("teachers.csv", b"0" * (600 * 1024 * 1024))
    with pytest.raises(BundleError) as caught:
        load_upload(buffer.getvalue(), "bomb.zip")
    assert any(p.code == "archive_too_large" for p in caught.value.problems)


def test_travel_is_the_shortest_road_path(tmp_path):
    bundle = random_bundle(3, tmp_path / "b", municipalities=5, unreachable=True)
    region = load_bundle(bundle)
    from oracle import BundleIndex

    index = BundleIndex(bundle)
    ids = region.municipalities.ids
    for i, a in enumerate(ids):
        for j, b in enumerate(ids):
            assert region.travel_minutes[i, j] == pytest.approx(index.travel(a, b))
    assert (region.travel_minutes == float("inf")).any()
