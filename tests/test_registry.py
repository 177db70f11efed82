"""The personalised-funding registry integration (engine/registry, api/routers/registry.py) against
a registry of our own (tests/registry_server.py) over real HTTP on 127.0.0.1.

- import: a large export (2,000 programs, 20,000 vouchers) timed and checked; re-import changes
  nothing; a newer export's difference is reported; JSON, CSV and URL exports agree;
- push: more than 1,000 orders through a registry that times out, answers 500, loses answers,
  rejects spent vouchers and full sessions, and goes down mid-batch, with the pusher itself killed
  mid-way: at the end every order is accepted exactly once or rejected (or blocked) with a reason,
  no voucher is overdrawn, and our ledger matches the registry's own ledger row for row;
- a 4xx stops the push with its reason, and the next push resumes;
- the API (on PostgreSQL): import into a region, push a solved plan, reconcile.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from api_server import REPO, Server, wait_for, zip_folder
from registry_server import (READINGS, RegistryServer, export_from_bundle, export_zip, identity_mapping,
                             ledger_differences, registry_orders, registry_table, seed_registry, synthetic_export)
from typer.testing import CliRunner

from marshrut.datasets.generator import generate_bundle
from marshrut.engine import load_bundle
from marshrut.engine.registry import (ExportError, Ledger, PushOptions, build_orders, bundle_tables, import_export, order_id,
                             plan_status, push_orders, read_export, read_mapping, read_plan_folder, reconcile)
from marshrut.registry import registry_app

ASSIGNMENT_COLUMNS = ["teacher_id", "kind", "resource_id", "start", "end", "hours", "cost_rub", "funded_by"]
FAULTS = {"seed": 7, "timeout_before": 0.01, "timeout_after": 0.01, "error_before": 0.02, "error_after": 0.02,
          "hang_s": 0.8, "pending": 0.03, "pending_s": 0.5}
CLIENT = {"timeout_s": 0.4, "backoff_s": 0.02, "backoff_cap_s": 0.5}


def _read(folder: Path, file: str) -> pd.DataFrame:
    return pd.read_csv(Path(folder) / file, dtype=str, keep_default_na=False)


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(Path(folder).iterdir()) if p.is_file()}


def program_plan(bundle: Path, *, teachers: int, seed: int = 0, max_programs: int = 2) -> pd.DataFrame:
    """Program assignments respecting seats, dates and vouchers (valid orders; no solver needed)."""
    rng = np.random.default_rng(seed)
    programs = _read(bundle, "programs.csv").set_index("program_id")
    sessions = _read(bundle, "program_sessions.csv")
    people = _read(bundle, "teachers.csv").head(teachers)
    seats = dict(zip(sessions["session_id"], sessions["seats"].astype(int)))
    rows = []
    for teacher, voucher in zip(people["teacher_id"], people["voucher_rub"].astype(int)):
        left, chosen = voucher, []
        for i in rng.permutation(len(sessions))[:12]:
            session = sessions.iloc[i]
            program = programs.loc[session["program_id"]]
            price, online = int(program["price_rub"]), program["format"] == "online"
            if len(chosen) >= max_programs or seats[session["session_id"]] <= 0 or price > left:
                continue
            if any(c["program_id"] == session["program_id"] or (not online and not c["online"] and not (
                    session["end"] < c["start"] or c["end"] < session["start"])) for c in chosen):
                continue
            chosen.append({"program_id": session["program_id"], "start": session["start"], "end": session["end"],
                           "online": online})
            left -= price
            seats[session["session_id"]] -= 1
            rows.append({"teacher_id": teacher, "kind": "program", "resource_id": session["session_id"],
                         "start": session["start"], "end": session["end"], "hours": program["hours"],
                         "cost_rub": price, "funded_by": "voucher"})
    return pd.DataFrame(rows, columns=ASSIGNMENT_COLUMNS)


def imported_region(work: Path, teachers: int) -> dict:
    """A generated region whose catalogue and vouchers came from a registry export."""
    source = generate_bundle("krasnoyarsk-krai", work / "generated", seed=0, teachers=teachers)
    export = export_from_bundle(source)
    (work / "export.json").write_text(json.dumps(export, ensure_ascii=False), encoding="utf-8")
    mapping = identity_mapping(source, work / "mapping.csv")
    bundle = work / "bundle"
    shutil.copytree(source, bundle)
    report = import_export(bundle, read_export(work / "export.json"), read_mapping(mapping, bundle))
    assert report.changed and not report.unmapped_codes
    return {"work": work, "bundle": bundle, "export": export, "mapping": mapping, "source": source}


@pytest.fixture(scope="module")
def region(tmp_path_factory) -> dict:
    """A 3,000-teacher region whose catalogue and vouchers came from a registry export."""
    imported = imported_region(tmp_path_factory.mktemp("registry"), 3000)
    load_bundle(imported["bundle"])
    return imported


# ------------------------------------------------------------------------------------------------
# order ids
# ------------------------------------------------------------------------------------------------

def test_order_ids_are_derived_from_plan_teacher_and_session(region):
    assert order_id("plan-a", "T1", "RS-1") == order_id("plan-a", "T1", "RS-1")
    assert len({order_id("plan-a", "T1", "RS-1"), order_id("plan-b", "T1", "RS-1"), order_id("plan-a", "T2", "RS-1"),
                order_id("plan-a", "T1", "RS-2")}) == 4
    plan = program_plan(region["bundle"], teachers=40)
    tables = bundle_tables(region["bundle"])
    first = build_orders("plan-x", "x", plan, tables)
    again = build_orders("plan-x", "x", plan.sample(frac=1, random_state=1), tables)
    assert sorted(o["order_id"] for o in first.orders) == sorted(o["order_id"] for o in again.orders)
    assert len(first.orders) == len(plan) and not first.blocked
    sessions = _read(region["bundle"], "program_sessions.csv").set_index("session_id")
    for order in first.orders:
        assert order["registry_session_id"] == sessions.loc[order["session_id"], "registry_session_id"]
        assert order["certificate_id"] == f"С-{order['teacher_id']}"


# ------------------------------------------------------------------------------------------------
# import
# ------------------------------------------------------------------------------------------------

def test_import_large_export_is_fast_idempotent_and_reports_a_newer_one(tmp_path):
    bundle = generate_bundle("krasnoyarsk-krai", tmp_path / "bundle", seed=1, teachers=20000)
    teachers = _read(bundle, "teachers.csv")
    old_registry_ids = set(_read(bundle, "programs.csv")["registry_id"])
    export = synthetic_export(bundle, programs=2000, vouchers=20000, seed=3)
    path = tmp_path / "export.json"
    path.write_text(json.dumps(export, ensure_ascii=False), encoding="utf-8")
    mapping_path = identity_mapping(bundle, tmp_path / "mapping.csv")

    started = time.perf_counter()
    loaded = read_export(path)
    report = import_export(bundle, loaded, read_mapping(mapping_path, bundle))
    seconds = time.perf_counter() - started
    # (import_export validated the merged bundle with engine.load_bundle before writing it)
    print(f"\nimport of {len(export['programs'])} programs, {len(export['sessions'])} sessions and "
          f"{len(export['vouchers'])} vouchers into a bundle of {len(teachers)} teachers: {seconds:.2f} s "
          f"(read, merge, validate the merged bundle, write)")

    assert report.changed and set(report.files_written) == {"programs.csv", "program_sessions.csv",
                                                             "program_competencies.csv", "teachers.csv"}
    programs = _read(bundle, "programs.csv")
    assert set(programs["registry_id"]) == {p["registry_id"] for p in export["programs"]}
    assert report.diff["programs.csv"].added == 2000 and report.diff["programs.csv"].removed == len(old_registry_ids)
    by_id = {p["registry_id"]: p for p in export["programs"]}
    for row in programs.itertuples(index=False):
        source = by_id[row.registry_id]
        assert (row.name, int(row.price_rub), float(row.hours)) == (source["title"], source["price_rub"],
                                                                    source["hours"])
        assert row.format == ("online" if source["form"] == "online" else "offline")
    # sessions: those outside the period are skipped and reported; places found by code or by name
    outside = [s["session_id"] for s in export["sessions"] if s["end"] > "2027-05-31"]
    sessions = _read(bundle, "program_sessions.csv")
    assert len(outside) == 10 and len(sessions) == len(export["sessions"]) - len(outside)
    assert set(sessions["registry_session_id"]) == {s["session_id"] for s in export["sessions"]} - set(outside)
    assert any(n["code"] == "outside_period" for n in report.notes)
    names = _read(bundle, "municipalities.csv").set_index("municipality_id")["name"]
    placed = sessions.set_index("registry_session_id")
    for s in export["sessions"]:
        if s["session_id"] in outside:
            continue
        municipality = placed.loc[s["session_id"], "municipality_id"]
        if s["place"] is None:
            assert municipality == ""
        elif s["place"]["municipality_code"] in names.index:
            assert municipality == s["place"]["municipality_code"]
        else:
            assert names[municipality] == s["place"]["municipality_name"]
    # competencies through the mapping; unmapped registry codes reported with their programs
    assert report.unmapped_codes == dict(Counter(c["code"] for p in export["programs"] for c in p["competencies"]
                                                 if c["code"].startswith("ЛК-")))
    links = _read(bundle, "program_competencies.csv")
    program_of = dict(zip(programs["registry_id"], programs["program_id"]))
    expected = {(program_of[p["registry_id"]], c["code"].removeprefix("ПК-")): f"{c['weight']:.2f}"
                for p in export["programs"] for c in p["competencies"] if c["code"].startswith("ПК-")}
    assert dict(zip(zip(links["program_id"], links["competency_id"]), links["weight"])) == expected
    # vouchers: balance of the active voucher, 0 for a suspended one, the certificate recorded
    teachers = _read(bundle, "teachers.csv").set_index("teacher_id")
    for v in export["vouchers"]:
        row = teachers.loc[v["teacher_id"]]
        assert row["certificate_id"] == v["certificate_id"]
        assert int(row["voucher_rub"]) == (v["balance_rub"] if v["status"] == "active" else 0)
    assert teachers["voucher_rub"].astype(int).sum() == sum(v["balance_rub"] for v in export["vouchers"]
                                                           if v["status"] == "active")

    # the same export again: nothing written, nothing reported as changed
    before = _digests(bundle)
    started = time.perf_counter()
    again = import_export(bundle, read_export(path), read_mapping(mapping_path, bundle))
    print(f"re-import of the same export: {time.perf_counter() - started:.2f} s, changed={again.changed}")
    assert not again.changed and again.files_written == [] and _digests(bundle) == before
    assert all(d.added == d.removed == d.changed == 0 for d in again.diff.values())

    # a newer export: 5 prices change, 3 programs leave, 2 arrive, 100 balances move, 3 vouchers disappear
    newer = copy.deepcopy(export)
    newer["exported_at"] = "2026-09-15T09:00:00+00:00"
    for program in newer["programs"][10:15]:
        program["price_rub"] += 500
    gone = {p["registry_id"] for p in newer["programs"][20:23]}
    newer["programs"] = [p for p in newer["programs"] if p["registry_id"] not in gone]
    newer["sessions"] = [s for s in newer["sessions"] if s["program_id"] not in gone]
    for n in (1, 2):
        rid = f"РП-NEW-{n}"
        newer["programs"].append({"registry_id": rid, "provider": "Новый провайдер", "title": f"Новая программа {n}",
                                  "hours": 36.0, "form": "online", "price_rub": 9000,
                                  "competencies": [{"code": "ПК-fgos", "weight": 0.9}]})
        newer["sessions"].append({"session_id": f"{rid}/1", "program_id": rid, "start": "2026-10-05",
                                  "end": "2026-10-30", "seats": 25, "place": None})
    moved = [v for v in newer["vouchers"] if v["status"] == "active"][:100]
    for voucher in moved:
        voucher["balance_rub"] -= 1000
    vanished = [v["teacher_id"] for v in newer["vouchers"][-3:]]
    assert all(v["status"] == "active" and v["balance_rub"] > 0 for v in newer["vouchers"][-3:])
    newer["vouchers"] = newer["vouchers"][:-3]
    newer_path = tmp_path / "export-newer.json"
    newer_path.write_text(json.dumps(newer, ensure_ascii=False), encoding="utf-8")
    update = import_export(bundle, read_export(newer_path), read_mapping(mapping_path, bundle))
    diff = update.diff
    assert (diff["programs.csv"].added, diff["programs.csv"].removed, diff["programs.csv"].changed) == (2, 3, 5)
    assert diff["programs.csv"].examples["changed:price_rub"][0]["new"] == str(newer["programs"][10]["price_rub"])
    removed_sessions = sum(1 for s in export["sessions"] if s["program_id"] in gone and s["session_id"] not in outside)
    assert (diff["program_sessions.csv"].added, diff["program_sessions.csv"].removed) == (2, removed_sessions)
    assert diff["program_sessions.csv"].changed == 0
    assert (diff["teachers.csv"].changed, diff["teachers.csv"].added, diff["teachers.csv"].removed) == (103, 0, 0)
    assert any(n["code"] == "voucher_gone" for n in update.notes)
    assert set(_read(bundle, "teachers.csv").set_index("teacher_id").loc[vanished, "voucher_rub"]) == {"0"}
    assert set(update.files_written) == {"programs.csv", "program_sessions.csv", "program_competencies.csv",
                                         "teachers.csv"}
    # session ids stay the same across imports (plans keep pointing at the same sessions)
    after = _read(bundle, "program_sessions.csv").set_index("registry_session_id")["session_id"]
    assert all(after[k] == v for k, v in sessions.set_index("registry_session_id")["session_id"].items()
               if k in after.index)
    # an older export than the last one imported is refused, and the bundle is left alone
    before = _digests(bundle)
    with pytest.raises(ExportError) as refused:
        import_export(bundle, read_export(path), read_mapping(mapping_path, bundle))
    assert refused.value.problems[0].code == "stale_export" and _digests(bundle) == before


def test_json_csv_and_url_exports_import_alike_and_bad_input_is_reported(region, tmp_path):
    export = region["export"]
    folders = {}
    for kind in ("json", "csv"):
        folders[kind] = tmp_path / kind
        shutil.copytree(region["source"], folders[kind])
    (tmp_path / "export.zip").write_bytes(export_zip(export))
    runner = CliRunner()
    for kind, source in (("json", region["work"] / "export.json"), ("csv", tmp_path / "export.zip")):
        result = runner.invoke(registry_app, ["import", "--from", str(source), "--bundle", str(folders[kind]),
                                              "--mapping", str(region["mapping"]), "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["changed"] is True
    for file in ("programs.csv", "program_sessions.csv", "program_competencies.csv", "teachers.csv"):
        assert (folders["json"] / file).read_bytes() == (folders["csv"] / file).read_bytes(), file
        assert (folders["json"] / file).read_bytes() == (region["bundle"] / file).read_bytes(), file

    # from the registry's URL (its live export: seats left, exported now)
    db = tmp_path / "registry.sqlite"
    seed_registry(db, export)
    with RegistryServer(db, log_dir=tmp_path) as registry:
        folder = tmp_path / "url"
        shutil.copytree(region["source"], folder)
        result = runner.invoke(registry_app, ["import", "--from", f"{registry.url}/v1/export", "--bundle",
                                              str(folder), "--mapping", str(region["mapping"])])
        assert result.exit_code == 0, result.output
        assert "программ" in result.output
        for file in ("programs.csv", "program_competencies.csv", "teachers.csv"):
            assert (folder / file).read_bytes() == (region["bundle"] / file).read_bytes(), file
        again = runner.invoke(registry_app, ["import", "--from", f"{registry.url}/v1/export?format=csv", "--bundle",
                                             str(folder), "--mapping", str(region["mapping"]), "--json"])
        assert again.exit_code == 0, again.output
        assert json.loads(again.output)["changed"] is False

    # a broken export: every problem listed, exit status 2, the bundle untouched
    broken = copy.deepcopy(export)
    broken["programs"][0]["price_rub"] = -5
    broken["sessions"][1]["program_id"] = "NO-SUCH"
    broken["vouchers"].append(dict(broken["vouchers"][0]))
    (tmp_path / "broken.json").write_text(json.dumps(broken, ensure_ascii=False), encoding="utf-8")
    before = _digests(folders["json"])
    result = runner.invoke(registry_app, ["import", "--from", str(tmp_path / "broken.json"), "--bundle",
                                          str(folders["json"]), "--mapping", str(region["mapping"])])
    assert result.exit_code == 2
    assert "programs[0].price_rub" in result.output
    with pytest.raises(ExportError) as error:
        read_export(tmp_path / "broken.json")
    problem = error.value.problems[0]
    assert (problem.column, problem.code) == ("programs[0].price_rub", "greater_than_equal")
    broken["programs"][0]["price_rub"] = 100
    (tmp_path / "broken.json").write_text(json.dumps(broken, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(ExportError) as error:
        read_export(tmp_path / "broken.json")
    assert {p.code for p in error.value.problems} == {"unknown_id", "duplicate_id"}
    assert _digests(folders["json"]) == before
    # a mapping naming a competency the bundle does not have
    bad_map = tmp_path / "bad-map.csv"
    bad_map.write_text("registry_code,competency_id\nПК-x,no_such_competency\n", encoding="utf-8")
    with pytest.raises(ExportError) as error:
        read_mapping(bad_map, folders["json"])
    assert error.value.problems[0].value == "no_such_competency"


# ------------------------------------------------------------------------------------------------
# push
# ------------------------------------------------------------------------------------------------

def _ledger_counts(path: Path) -> int:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as connection:
            return connection.execute("SELECT count(*) FROM registry_orders WHERE status IN "
                                      "('accepted','rejected')").fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.mark.parametrize("reading", READINGS)
def test_push_through_a_misbehaving_registry(region, tmp_path, reading):
    bundle, export = region["bundle"], region["export"]
    plan = program_plan(bundle, teachers=560, seed=5)
    vouchers = _read(bundle, "teachers.csv").set_index("teacher_id")["voucher_rub"].astype(int)
    # two hand-made rows the guard must stop: a second costly program beyond the teacher's voucher
    sessions = _read(bundle, "program_sessions.csv").merge(_read(bundle, "programs.csv"), on="program_id")
    poor = plan.groupby("teacher_id")["cost_rub"].sum()
    extra = []
    for teacher in list(poor.index[:2]):
        taken = set(plan.loc[plan["teacher_id"] == teacher, "resource_id"])
        costly = sessions[~sessions["session_id"].isin(taken)].sort_values("price_rub", key=lambda s: -s.astype(int))
        row = costly.iloc[0]
        assert poor[teacher] + int(row["price_rub"]) > vouchers[teacher]
        extra.append({"teacher_id": teacher, "kind": "program", "resource_id": row["session_id"], "start": row["start"],
                      "end": row["end"], "hours": row["hours"], "cost_rub": int(row["price_rub"]),
                      "funded_by": "voucher"})
    plan = pd.concat([plan, pd.DataFrame(extra)], ignore_index=True)
    assert len(plan) >= 1000
    plan_dir = tmp_path / "plan"
    plan_dir.mkdir()
    plan.to_csv(plan_dir / "assignments.csv", index=False)
    plan_key, assignments = read_plan_folder(plan_dir)
    orders = build_orders(plan_key, str(plan_dir), assignments, bundle_tables(bundle))
    assert len(orders.orders) == len(plan)

    # the registry: some vouchers spent elsewhere since the import, some closed, two sessions full
    certificate_of = {o["order_id"]: o["certificate_id"] for o in orders.orders}
    planned_certificates = sorted({o["certificate_id"] for o in orders.orders})
    spent = {c: 10**9 for c in planned_certificates[5:400:20]}
    closed = planned_certificates[7:400:97]
    by_session = Counter(o["registry_session_id"] for o in orders.orders)
    full = [s for s, _ in by_session.most_common(8)[-2:]]
    seed_export = copy.deepcopy(export)
    for voucher in seed_export["vouchers"]:
        if voucher["certificate_id"] in closed:
            voucher["status"] = "closed"
    db = tmp_path / "registry.sqlite"
    seed_registry(db, seed_export, spent=spent, taken={s: next(x["seats"] for x in export["sessions"]
                                                                if x["session_id"] == s) for s in full})
    initial = {v["certificate_id"]: v["balance_rub"] for v in registry_table(db, "vouchers")}
    ledger_path = tmp_path / "ledger.sqlite"
    database = f"sqlite:///{ledger_path}"
    started = time.perf_counter()

    with RegistryServer(db, faults=FAULTS, log_dir=tmp_path, reading=reading) as registry:
        # 1. the pusher is killed mid-batch (a crash of the process)
        command = [sys.executable, "-m", "marshrut.registry", "push", str(plan_dir), "--bundle", str(bundle),
                   "--registry", registry.url, "--database", database, "--timeout", str(CLIENT["timeout_s"]),
                   "--backoff", str(CLIENT["backoff_s"]), "--quiet"]
        process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   env={**os.environ, "PYTHONPATH": str(REPO)})
        deadline = time.monotonic() + 60
        while _ledger_counts(ledger_path) < 200 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process.poll() is None, process.stdout.read().decode()
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        answered_at_crash = _ledger_counts(ledger_path)
        assert 200 <= answered_at_crash < len(orders.orders) - 450

        # 2. the registry goes down mid-batch (right after committing an order: that answer is lost)
        processed = httpx.get(registry.url + "/_admin/stats", timeout=5).json()["processed"]
        registry.set_faults({**FAULTS, "down_after": processed + 300})
        with Ledger(database) as ledger:
            stopped = push_orders(ledger, registry.url, orders, PushOptions(**CLIENT, max_attempts=4))
        assert stopped.outcome == "stopped" and "недоступен" in stopped.reason, stopped
        assert not registry.alive()

        # 3. it comes back, and so does the pusher: the push resumes and completes
        registry.restart(faults={**FAULTS, "seed": 8})
        with Ledger(database) as ledger:
            done = push_orders(ledger, registry.url, orders, PushOptions(**CLIENT, max_attempts=10))
            assert done.outcome == "completed", done
            # once more: nothing left to send
            idle = push_orders(ledger, registry.url, orders, PushOptions(**CLIENT))
            assert idle.outcome == "completed" and idle.requests == 0
            status = plan_status(ledger, plan_key)
            differences = reconcile(ledger, plan_key, registry.url)
            ours = ledger.plan_orders(plan_key)
            events = ledger.order_events(plan_key=plan_key)
        result = CliRunner().invoke(registry_app, ["status", str(plan_dir), "--database", database, "--check",
                                                   "--registry", registry.url])
        assert result.exit_code == 0, result.output
        assert "принято" in result.output and "совпадает" in result.output
    print(f"\npush of {len(orders.orders)} orders through the misbehaving registry (crash, outage, faults): "
          f"{time.perf_counter() - started:.1f} s; {Counter(e['outcome'] for e in events)}")

    theirs = registry_orders(db)
    requests = registry_table(db, "requests")
    # every order: accepted exactly once, or rejected by the registry with a reason, or blocked by us with one
    assert {o["status"] for o in ours} <= {"accepted", "rejected", "blocked"}
    assert status.open["orders"] == 0 and status.planned["orders"] == len(orders.orders)
    for row in ours:
        if row["status"] != "accepted":
            assert row["reason_code"] and row["reason"], row
    assert {r["reason_code"] for r in ours if r["status"] == "blocked"} == {"voucher_exceeded"}
    assert len([r for r in ours if r["status"] == "blocked"]) == 2
    rejected = Counter(r["reason_code"] for r in ours if r["status"] == "rejected")
    assert {"insufficient_balance", "voucher_inactive", "no_seats"} <= set(rejected), rejected
    assert status.rejected["orders"] == sum(rejected.values())
    # the registry's ledger: one row per order, never an enrolment twice, never an unknown id
    assert len(theirs) == len({r["order_id"] for r in theirs})
    accepted = [r for r in theirs if r["status"] == "accepted"]
    assert len(accepted) == len({(r["certificate_id"], r["session_id"]) for r in accepted})
    ids = {o["order_id"] for o in orders.orders}
    assert {r["order_id"] for r in requests} <= ids
    assert {r["fault"] for r in requests} >= {"timeout_before", "timeout_after", "error_before", "error_after"}
    assert {"timeout", "server_error", "connection_error"} <= {e["outcome"] for e in events}
    # no voucher overdrawn: in the registry, and against the vouchers the plan was made on
    final = {v["certificate_id"]: v["balance_rub"] for v in registry_table(db, "vouchers")}
    debited = defaultdict(int)
    for r in accepted:
        debited[r["certificate_id"]] += r["amount_rub"]
    for certificate, amount in debited.items():
        assert final[certificate] == initial[certificate] - amount >= 0
        assert amount <= orders.balances[certificate]
    # our ledger matches the registry's, field by field (blocked orders were never sent)
    assert ledger_differences(ours, theirs) == []
    assert any(e["outcome"] == "pending" for e in events)
    assert all(certificate_of[r["order_id"]] == r["certificate_id"] for r in theirs)
    assert differences["matches"], differences
    assert answered_at_crash > 0


def test_a_4xx_stops_the_push_with_its_reason_and_the_next_push_resumes(region, tmp_path):
    bundle = region["bundle"]
    plan = program_plan(bundle, teachers=40, seed=9)
    plan_dir = tmp_path / "plan"
    plan_dir.mkdir()
    plan.to_csv(plan_dir / "assignments.csv", index=False)
    plan_key, assignments = read_plan_folder(plan_dir)
    orders = build_orders(plan_key, str(plan_dir), assignments, bundle_tables(bundle))
    db = tmp_path / "registry.sqlite"
    seed_registry(db, region["export"])
    # a bad key is answered after 0.3 s: the four parallel lanes all have a request on its way
    with RegistryServer(db, api_key="secret", faults={"auth_delay_s": 0.3}, log_dir=tmp_path) as registry, \
            Ledger(f"sqlite:///{tmp_path}/ledger.sqlite") as ledger:
        refused = push_orders(ledger, registry.url, orders, PushOptions(**CLIENT, concurrency=4))
        assert refused.outcome == "stopped" and "401" in refused.reason and "API key" in refused.reason
        refusals = [e for e in ledger.order_events(plan_key=plan_key) if e["outcome"] == "client_error"]
        assert len(refusals) == refused.requests >= 2  # several answered 401 ...
        assert refused.counts["error"]["orders"] == 1  # ... and only the first one's order is `error`
        assert refused.counts["new"]["orders"] == len(orders.orders) - 1
        assert refused.counts["accepted"]["orders"] == 0 and registry_orders(db) == []
        # a second pusher of the same plan while one holds the lease: refused, nothing sent
        assert ledger.claim(plan_key, "x", "elsewhere:1:1", lease_seconds=60) is None
        busy = push_orders(ledger, registry.url, orders, PushOptions(**CLIENT, api_key="secret"))
        assert busy.outcome == "busy" and busy.requests == 0
        ledger.release(plan_key, "elsewhere:1:1", "stopped", {})
        done = push_orders(ledger, registry.url, orders, PushOptions(**CLIENT, api_key="secret"))
        assert done.outcome == "completed" and done.counts["accepted"]["orders"] == len(orders.orders)
        assert len(registry_orders(db)) == len(orders.orders)
        # the same ids under a different body are a conflict: the push stops and says so
        changed = copy.deepcopy(orders)
        with ledger.engine.begin() as connection:
            connection.exec_driver_sql("UPDATE registry_orders SET status='sent', amount_rub=amount_rub+1 "
                                       "WHERE order_id=?", (changed.orders[0]["order_id"],))
        conflict = push_orders(ledger, registry.url, changed, PushOptions(**CLIENT, api_key="secret"))
        assert conflict.outcome == "stopped" and "409" in conflict.reason and "idempotency" in conflict.reason


# ------------------------------------------------------------------------------------------------
# the API, on PostgreSQL
# ------------------------------------------------------------------------------------------------

def _wait_push(http, plan_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        report = http.get(f"/v1/plans/{plan_id}/registry").json()
        if report["push"] and report["push"]["state"] != "running":
            return report
        assert time.monotonic() < deadline, report
        time.sleep(0.2)


@pytest.mark.parametrize("reading", READINGS)
def test_api_import_push_and_reconcile_on_postgresql(postgres, tmp_path, reading):
    sample = REPO / "datasets" / "samples" / "tomsk-school-44"
    export = export_from_bundle(sample)
    mapping = identity_mapping(sample, tmp_path / "mapping.csv")
    db = tmp_path / "registry.sqlite"
    seed_registry(db, export, spent={export["vouchers"][0]["certificate_id"]: 10**9})
    # every order goes pending for 2 s; the server's push asks about them for 0 s, so it ends `pending`
    faults = {**FAULTS, "hang_s": 0.5, "pending": 1.0, "pending_s": 2.0}
    with RegistryServer(db, faults=faults, log_dir=tmp_path, reading=reading) as registry, \
            Server(postgres.create_database(), log_dir=tmp_path, env={
                "MARSHRUT_REGISTRY_URL": registry.url, "MARSHRUT_REGISTRY_TIMEOUT_S": "0.3",
                "MARSHRUT_REGISTRY_BACKOFF_S": "0.02", "MARSHRUT_MAX_CONCURRENT_SOLVES": "1",
                "MARSHRUT_REGISTRY_PENDING_WAIT_S": "0"}) as server, \
            server.client() as http:
        region = http.post("/v1/regions", files={"file": ("tomsk.zip", zip_folder(sample))}).json()
        files = {"export": ("export.json", json.dumps(export, ensure_ascii=False).encode(), "application/json"),
                 "mapping": ("mapping.csv", mapping.read_bytes(), "text/csv")}
        imported = http.post(f"/v1/regions/{region['region_id']}/registry/import", files=files)
        assert imported.status_code == 201, imported.text
        body = imported.json()
        assert body["changed"] and body["region_id"] != region["region_id"]
        assert body["report"]["diff"]["teachers.csv"]["changed"] == len(export["vouchers"])
        again = http.post(f"/v1/regions/{body['region_id']}/registry/import", files=files)
        assert again.status_code == 200 and again.json()["region_id"] == body["region_id"], again.text
        bad = http.post(f"/v1/regions/{body['region_id']}/registry/import",
                        files={"export": ("export.json", b'{"programs": [{"registry_id": ""}]}', "application/json")})
        assert bad.status_code == 422 and bad.json()["total"] >= 1

        plan = http.post("/v1/plans", json={"region_id": body["region_id"], "params": {"time_limit_s": 3}}).json()
        assert wait_for(http, plan["plan_id"], timeout=180)["status"] == "done"
        plan_id = plan["plan_id"]
        assignments = http.get(f"/v1/plans/{plan_id}/assignments").json()["assignments"]
        programs = [a for a in assignments if a["kind"] == "program"]
        assert programs
        started = http.post(f"/v1/plans/{plan_id}/registry/push")
        assert started.status_code == 202, started.text
        report = _wait_push(http, plan_id)
        assert report["push"]["state"] == "pending", report["push"]
        assert report["counts"]["pending"]["orders"] == report["push"]["result"]["pending"] > 0
        time.sleep(2.0)  # the registry decides; the next push asks about the pending orders
        posts = len([r for r in registry_table(db, "requests") if r["method"] == "POST"])
        assert http.post(f"/v1/plans/{plan_id}/registry/push").status_code == 202
        report = _wait_push(http, plan_id)
        assert report["push"]["state"] == "completed", report["push"]
        assert len([r for r in registry_table(db, "requests") if r["method"] == "POST"]) == posts
        assert report["planned"]["orders"] == len(programs) and report["open"]["orders"] == 0
        assert report["accepted"]["orders"] + report["rejected"]["orders"] == len(programs)
        checked = http.get(f"/v1/plans/{plan_id}/registry", params={"check": "true"}).json()
        assert checked["reconciliation"]["matches"], checked["reconciliation"]
        ledger = http.get(f"/v1/plans/{plan_id}/registry/orders").json()["orders"]
        theirs = {r["order_id"]: r for r in registry_orders(db)}
        assert {r["order_id"]: r["status"] for r in ledger} == {k: r["status"] for k, r in theirs.items()}
        fields = ("certificate_id", "teacher_id", "program_id", "amount_rub", "status", "reason_code", "reason",
                  "balance_after_rub")
        assert [(r["order_id"], *(r[f] for f in fields), r["registry_session_id"]) for r in ledger] == \
            [(r["order_id"], *(theirs[r["order_id"]][f] for f in fields), theirs[r["order_id"]]["session_id"])
             for r in ledger]
        csv_text = http.get(f"/v1/plans/{plan_id}/registry/orders", params={"format": "csv"}).text
        assert csv_text.startswith("order_id,") and len(csv_text.strip().splitlines()) == len(programs) + 1
        # pushing again: nothing new is sent
        requests_before = len([r for r in registry_table(db, "requests") if r["method"] == "POST"])
        assert http.post(f"/v1/plans/{plan_id}/registry/push").status_code in (202, 409)
        deadline = time.monotonic() + 30
        while http.get(f"/v1/plans/{plan_id}/registry").json()["push"]["state"] == "running":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert len([r for r in registry_table(db, "requests") if r["method"] == "POST"]) == requests_before
        assert http.post("/v1/plans/" + "0" * 32 + "/registry/push").status_code == 404
