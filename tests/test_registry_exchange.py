"""The registry exchange exactly as docs/registry.md and docs/registry-openapi.yaml describe it,
against two registries of our own over real HTTP (tests/registry_server.py): one follows the
reading the docs chose for each point a vendor could read two ways (`docs`), the other the other
reasonable reading (`other`: a replay is the first answer verbatim, the same key while the first
request runs is a 409, money is checked before seats, pending orders hold nothing).

- pending orders are asked about (GET /v1/orders/{id}) until they settle, never re-sent; a push
  that ends with some still pending exits 3, not 0 "completed";
- `status --check` compares every field of every order and takes the registry's state, each
  difference reported;
- `external_ref` is `plan-` + the SHA-256 of assignments.csv; order ids are recomputed from the
  namespace the docs publish; a plan already in a ledger under the old key keeps it;
- Retry-After as seconds and as an HTTP date; one longer than the cap stops the push;
- the same key while the first request still runs (425, or 409), which rejection reason wins,
  whether pending orders hold balance and seats;
- the ledger on PostgreSQL (a 69-character plan key; an old VARCHAR(64) ledger widened).

Every scenario ends with both ledgers agreeing field by field (`ledger_differences`).
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import re
import time
import uuid
from collections import Counter

import httpx
import pandas as pd
import pytest
from api_server import REPO
from registry_server import (READINGS, RegistryServer, ledger_differences, registry_orders, registry_table,
                             seed_registry)
from test_registry import ASSIGNMENT_COLUMNS, _read, imported_region, program_plan
from typer.testing import CliRunner

from marshrut.engine.registry import (Ledger, PushOptions, build_orders, bundle_tables, plan_status, push_orders,
                                      read_plan_folder, reconcile)
from marshrut.engine.registry import ledger as ledger_module
from marshrut.engine.registry.client import retry_after_seconds
from marshrut.engine.registry.orders import legacy_plan_key
from marshrut.registry import registry_app

CLIENT = {"timeout_s": 2.0, "backoff_s": 0.02, "backoff_cap_s": 0.5}


@pytest.fixture(scope="module")
def region(tmp_path_factory) -> dict:
    """A 300-teacher region imported from a registry export; the registry's own copy of the export
    also has a second session of every program (somewhere the registry can move an enrolment)."""
    imported = imported_region(tmp_path_factory.mktemp("exchange"), 300)
    export = imported["export"]
    registry_export = copy.deepcopy(export)
    registry_export["sessions"] += [{**s, "session_id": s["session_id"] + "/B", "seats": 50}
                                    for s in export["sessions"]]
    return {**imported, "export": registry_export}


def make_plan(region: dict, folder, *, teachers: int, seed: int, frame: pd.DataFrame | None = None):
    """A plan folder (assignments.csv) and its orders."""
    folder.mkdir()
    (program_plan(region["bundle"], teachers=teachers, seed=seed) if frame is None else frame).to_csv(
        folder / "assignments.csv", index=False)
    plan_key, assignments = read_plan_folder(folder)
    return plan_key, build_orders(plan_key, str(folder), assignments, bundle_tables(region["bundle"]))


def seeded(tmp_path, export: dict, **kwargs):
    db = tmp_path / "registry.sqlite"
    seed_registry(db, export, **kwargs)
    return db


def assert_agree(ledger: Ledger, plan_key: str, db) -> None:
    """Both ledgers agree on the plan's orders, field by field."""
    theirs = [r for r in registry_orders(db) if r["external_ref"] == plan_key]
    assert ledger_differences(ledger.plan_orders(plan_key), theirs) == []


# ------------------------------------------------------------------------------------------------
# 1. pending orders
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("reading", READINGS)
def test_pending_orders_are_asked_about_until_they_settle(region, tmp_path, reading):
    plan_dir = tmp_path / "plan"
    plan_key, orders = make_plan(region, plan_dir, teachers=120, seed=1)
    db = seeded(tmp_path, region["export"])
    database = f"sqlite:///{tmp_path}/ledger.sqlite"
    # 40% of the orders go pending for 2 s; 10% of the answers are lost (500 after processing)
    faults = {"seed": 3, "pending": 0.4, "pending_s": 2.0, "error_after": 0.1}
    with RegistryServer(db, faults=faults, reading=reading, log_dir=tmp_path) as registry:
        first = CliRunner().invoke(registry_app, [
            "push", str(plan_dir), "--bundle", str(region["bundle"]), "--registry", registry.url, "--database",
            database, "--backoff", "0.02", "--wait-pending", "0", "--quiet"])
        assert first.exit_code == 3, first.output  # not 0 "completed": orders are still pending
        assert "pending" in first.output and "завершена" not in first.output
        with Ledger(database) as ledger:
            pending = {r["order_id"]: r for r in ledger.plan_orders(plan_key) if r["status"] == "pending"}
            assert len(pending) >= 10 and ledger.push_state(plan_key)["state"] == "pending"
            assert ledger.push_state(plan_key)["result"]["pending"] == len(pending)
            posts = Counter(r["order_id"] for r in registry_table(db, "requests") if r["method"] == "POST")

            # the registry as it reads a replay: the order's current state (docs) or the first answer
            time.sleep(2.2)
            some = next(iter(pending.values()))
            body = {"order_id": some["order_id"], "certificate_id": some["certificate_id"],
                    "teacher_id": some["teacher_id"], "session_id": some["registry_session_id"],
                    "program_id": some["program_id"], "amount_rub": some["amount_rub"], "external_ref": plan_key}
            replay = httpx.post(registry.url + "/v1/orders", json=body, headers={"Idempotency-Key": body["order_id"]})
            current = httpx.get(f"{registry.url}/v1/orders/{some['order_id']}").json()
            assert current["status"] in ("accepted", "rejected")
            if reading == "docs":
                assert replay.status_code == 200 and replay.json()["status"] == current["status"]
            else:  # "keeps answering 202 pending": re-sending would learn nothing
                assert replay.status_code == 202 and replay.json()["status"] == "pending"
            posts[some["order_id"]] += 1

            done = push_orders(ledger, registry.url, orders, PushOptions(**CLIENT, pending_wait_s=20, poll_s=0.2))
            assert done.outcome == "completed" and done.pending == 0, done
            requests = registry_table(db, "requests")
            # asked with GET, never sent again
            assert Counter(r["order_id"] for r in requests if r["method"] == "POST") == posts
            assert set(pending) <= {r["order_id"] for r in requests if r["method"] == "GET"}
            assert {r["status"] for r in ledger.plan_orders(plan_key)} <= {"accepted", "rejected", "blocked"}
            differences = reconcile(ledger, plan_key, registry.url)
            assert differences["matches"], differences
            assert_agree(ledger, plan_key, db)


@pytest.mark.parametrize("reading", READINGS)
def test_pending_holds_and_which_rejection_reason_wins_follow_the_registry(region, tmp_path, reading):
    """Teacher A's order goes pending on the last seat of S1; B orders S1 next; C orders the full
    session S2 with a voucher spent elsewhere (two reasons apply)."""
    bundle = region["bundle"]
    sessions = _read(bundle, "program_sessions.csv").merge(_read(bundle, "programs.csv"), on="program_id")
    teachers = _read(bundle, "teachers.csv").sort_values("teacher_id")
    s1, s2 = sessions.iloc[0], sessions.iloc[1]
    able = teachers[teachers["voucher_rub"].astype(int) >= max(int(s1["price_rub"]), int(s2["price_rub"]))]
    a, b, c = able["teacher_id"].iloc[:3]
    rows = [{"teacher_id": t, "kind": "program", "resource_id": s["session_id"], "start": s["start"], "end": s["end"],
             "hours": s["hours"], "cost_rub": s["price_rub"], "funded_by": "voucher"}
            for t, s in ((a, s1), (b, s1), (c, s2))]
    plan_key, orders = make_plan(region, tmp_path / "plan", teachers=0, seed=0,
                                 frame=pd.DataFrame(rows, columns=ASSIGNMENT_COLUMNS))
    by_teacher = {o["teacher_id"]: o for o in orders.orders}
    seats = {s["session_id"]: s["seats"] for s in region["export"]["sessions"]}
    rs1, rs2 = s1["registry_session_id"], s2["registry_session_id"]
    db = seeded(tmp_path, region["export"], taken={rs1: seats[rs1] - 1, rs2: seats[rs2]},
                spent={by_teacher[c]["certificate_id"]: 10**9})
    faults = {"pending_certificates": [by_teacher[a]["certificate_id"]], "pending_s": 0.5}
    with RegistryServer(db, faults=faults, reading=reading, log_dir=tmp_path) as registry, \
            Ledger(f"sqlite:///{tmp_path}/ledger.sqlite") as ledger:
        done = push_orders(ledger, registry.url, orders, PushOptions(**CLIENT, concurrency=1, poll_s=0.2))
        assert done.outcome == "completed", done
        states = {r["teacher_id"]: (r["status"], r["reason_code"]) for r in ledger.plan_orders(plan_key)}
        if reading == "docs":  # A held the seat while pending; seats are checked before money
            assert states == {a: ("accepted", None), b: ("rejected", "no_seats"), c: ("rejected", "no_seats")}
        else:  # A held nothing, B took the seat; money is checked first
            assert states == {a: ("rejected", "no_seats"), b: ("accepted", None),
                              c: ("rejected", "insufficient_balance")}
        assert reconcile(ledger, plan_key, registry.url)["matches"]
        assert_agree(ledger, plan_key, db)


# ------------------------------------------------------------------------------------------------
# 2. the check compares every field
# ------------------------------------------------------------------------------------------------

def test_status_check_compares_every_field_and_takes_the_registry_state(region, tmp_path):
    plan_dir = tmp_path / "plan"
    plan_key, orders = make_plan(region, plan_dir, teachers=80, seed=2)
    certificates = sorted({o["certificate_id"] for o in orders.orders})
    db = seeded(tmp_path, region["export"], spent={c: 10**9 for c in certificates[:6]})
    database = f"sqlite:///{tmp_path}/ledger.sqlite"
    runner = CliRunner()
    with RegistryServer(db, log_dir=tmp_path) as registry, Ledger(database) as ledger:
        assert push_orders(ledger, registry.url, orders, PushOptions(**CLIENT)).outcome == "completed"
        rows = ledger.plan_orders(plan_key)
        accepted = [r for r in rows if r["status"] == "accepted"]
        rejected = next(r for r in rows if r["status"] == "rejected")
        moved, cancelled = accepted[0], accepted[1]
        # the registry's operator: moves an enrolment to another session of the same program, rewrites
        # a rejection's reason, cancels an order
        target = moved["registry_session_id"] + "/B"
        httpx.post(f"{registry.url}/_admin/orders/{moved['order_id']}",
                   json={"session_id": target}).raise_for_status()
        httpx.post(f"{registry.url}/_admin/orders/{rejected['order_id']}",
                   json={"reason_code": "voucher_inactive", "reason": "сертификат приостановлен"}).raise_for_status()
        httpx.delete(f"{registry.url}/v1/orders/{cancelled['order_id']}").raise_for_status()

        checked = runner.invoke(registry_app, ["status", str(plan_dir), "--database", database, "--check",
                                               "--registry", registry.url, "--json"])
        assert checked.exit_code == 0, checked.output
        found = json.loads(checked.output)["reconciliation"]
        assert not found["matches"] and found["agree"], found
        assert {(d["order_id"], d["field"]) for d in found["differences"]} == {
            (moved["order_id"], "session_id"), (rejected["order_id"], "reason_code"),
            (rejected["order_id"], "reason"), (cancelled["order_id"], "status")}
        assert {a["order_id"] for a in found["adopted"]} == {moved["order_id"], rejected["order_id"],
                                                             cancelled["order_id"]}
        after = {r["order_id"]: r for r in ledger.plan_orders(plan_key)}
        assert after[moved["order_id"]]["registry_session_id"] == target
        assert (after[rejected["order_id"]]["reason_code"], after[rejected["order_id"]]["reason"]) == (
            "voucher_inactive", "сертификат приостановлен")
        assert after[cancelled["order_id"]]["status"] == "cancelled"
        assert_agree(ledger, plan_key, db)
        again = runner.invoke(registry_app, ["status", str(plan_dir), "--database", database, "--check",
                                             "--registry", registry.url])
        assert again.exit_code == 0 and "совпадает" in again.output and "расхожден" not in again.output
        # the moved enrolment holds the new session: pushing again sends nothing and changes nothing
        assert push_orders(ledger, registry.url, orders, PushOptions(**CLIENT)).requests == 0
        assert_agree(ledger, plan_key, db)


def test_the_check_prints_each_difference(region, tmp_path):
    plan_dir = tmp_path / "plan"
    plan_key, orders = make_plan(region, plan_dir, teachers=20, seed=4)
    db = seeded(tmp_path, region["export"])
    database = f"sqlite:///{tmp_path}/ledger.sqlite"
    with RegistryServer(db, log_dir=tmp_path) as registry:
        with Ledger(database) as ledger:
            push_orders(ledger, registry.url, orders, PushOptions(**CLIENT))
        some = orders.orders[0]["order_id"]
        httpx.post(f"{registry.url}/_admin/orders/{some}", json={"reason": "перепроверено"})
        text = CliRunner().invoke(registry_app, ["status", str(plan_dir), "--database", database, "--check",
                                                 "--registry", registry.url]).output
    assert some in text and "reason" in text and "перепроверено" in text and "расхождений 1" in text


# ------------------------------------------------------------------------------------------------
# 3. external_ref and order ids as documented
# ------------------------------------------------------------------------------------------------

def test_external_ref_and_order_ids_are_what_the_docs_say(region, tmp_path):
    docs = (REPO / "docs" / "registry.md").read_text(encoding="utf-8")
    namespace = uuid.UUID(re.search(r"namespace\s+`([0-9a-f-]{36})`", docs).group(1))
    assert "U+001F" in docs
    plan_dir = tmp_path / "plan"
    _, orders = make_plan(region, plan_dir, teachers=40, seed=6)
    reference = "plan-" + hashlib.sha256((plan_dir / "assignments.csv").read_bytes()).hexdigest()
    assert len(reference) == 69
    db = seeded(tmp_path, region["export"])
    database = f"sqlite:///{tmp_path}/ledger.sqlite"
    runner = CliRunner()
    with RegistryServer(db, log_dir=tmp_path) as registry:
        pushed = runner.invoke(registry_app, ["push", str(plan_dir), "--bundle", str(region["bundle"]), "--registry",
                                              registry.url, "--database", database, "--quiet"])
        assert pushed.exit_code == 0, pushed.output
        listed = httpx.get(registry.url + "/v1/orders", params={"external_ref": reference}).json()["items"]
        assert len(listed) == len(orders.orders) > 0
        for item in listed:  # recomputed by anyone from the docs alone
            name = "\x1f".join((reference, item["teacher_id"], item["session_id"]))
            assert item["order_id"] == str(uuid.uuid5(namespace, name))

        # a plan pushed by an older marshrut under `plan-` + 40 hex digits keeps that key (its orders
        # carry it at the registry): nothing is sent again under new ids
        old_dir = tmp_path / "old-plan"
        _, fresh = make_plan(region, old_dir, teachers=30, seed=7)
        content = (old_dir / "assignments.csv").read_bytes()
        legacy = legacy_plan_key(content)
        old = build_orders(legacy, str(old_dir), pd.read_csv(old_dir / "assignments.csv", dtype=str,
                                                             keep_default_na=False), bundle_tables(region["bundle"]))
        with Ledger(database) as ledger:
            half = copy.copy(old)
            half.orders = old.orders[: len(old.orders) // 2]
            assert push_orders(ledger, registry.url, half, PushOptions(**CLIENT)).outcome == "completed"
        resumed = runner.invoke(registry_app, ["push", str(old_dir), "--bundle", str(region["bundle"]), "--registry",
                                               registry.url, "--database", database, "--quiet", "--json"])
        assert resumed.exit_code == 0, resumed.output
        assert json.loads(resumed.output)["push"]["plan_key"] == legacy
        assert httpx.get(registry.url + "/v1/orders", params={"external_ref": fresh.plan_key}).json()["items"] == []
        listed = httpx.get(registry.url + "/v1/orders", params={"external_ref": legacy}).json()["items"]
        with Ledger(database) as ledger:
            assert not ledger.has_orders(fresh.plan_key)
            rows = ledger.plan_orders(legacy)
            # (orders of teachers the first plan already enrolled in the same session are blocked)
            assert len(rows) == len(old.orders)
            assert {r["order_id"] for r in rows} == {o["order_id"] for o in old.orders}
            assert sorted(i["order_id"] for i in listed) == sorted(r["order_id"] for r in rows
                                                                   if r["status"] != "blocked")
            assert_agree(ledger, legacy, db)
        status = runner.invoke(registry_app, ["status", str(old_dir), "--database", database, "--json"])
        assert json.loads(status.output)["planned"]["orders"] == len(old.orders)


# ------------------------------------------------------------------------------------------------
# 4. Retry-After, 425 / 409 for a key still running
# ------------------------------------------------------------------------------------------------

def test_retry_after_is_read_as_seconds_or_an_http_date():
    now = dt.datetime(2026, 11, 28, 7, 0, 0, tzinfo=dt.UTC)
    assert retry_after_seconds("120", now) == 120.0
    assert retry_after_seconds("Sat, 28 Nov 2026 07:00:05 GMT", now) == 5.0
    assert retry_after_seconds("Sat, 28 Nov 2026 06:59:00 GMT", now) == 0.0  # in the past: at once
    assert retry_after_seconds("soon", now) is None and retry_after_seconds(None, now) is None


@pytest.mark.parametrize("form", ["seconds", "date"])
def test_retry_after_is_honoured_in_both_forms_and_a_longer_one_than_the_cap_stops(region, tmp_path, form):
    db = seeded(tmp_path, region["export"])
    with RegistryServer(db, faults={"busy": 1.0, "busy_s": 3600, "busy_form": form}, log_dir=tmp_path) as registry, \
            Ledger(f"sqlite:///{tmp_path}/ledger.sqlite") as ledger:
        plan_key, orders = make_plan(region, tmp_path / "plan", teachers=30, seed=8)
        started = time.monotonic()
        stopped = push_orders(ledger, registry.url, orders, PushOptions(**CLIENT, retry_after_cap_s=5))
        assert stopped.outcome == "stopped" and "Retry-After" in stopped.reason, stopped
        assert time.monotonic() - started < 60  # did not wait the hour
        registry.set_faults({"seed": 1, "busy": 0.3, "busy_s": 1, "busy_form": form, "busy_status": 503})
        done = push_orders(ledger, registry.url, orders, PushOptions(**CLIENT, max_attempts=12))
        assert done.outcome == "completed", done
        requests = registry_table(db, "requests")
        busy = [r for r in requests if r["fault"] == "busy" and r["http_status"] == 503]
        assert len(busy) >= 3
        for answer in busy:  # the next request for that order came no earlier than the registry asked
            following = [r for r in requests if r["order_id"] == answer["order_id"] and r["id"] > answer["id"]]
            assert following and following[0]["at_epoch"] >= answer["not_before"] - 0.02, (answer, following[0])
        assert_agree(ledger, plan_key, db)


@pytest.mark.parametrize("reading", READINGS)
def test_the_same_key_while_the_first_request_still_runs(region, tmp_path, reading):
    db = seeded(tmp_path, region["export"])
    # 30% of new orders take 0.8 s to process; the client gives up after 0.3 s and sends the key again
    with RegistryServer(db, faults={"seed": 5, "slow": 0.3, "hang_s": 0.8}, reading=reading,
                        log_dir=tmp_path) as registry, Ledger(f"sqlite:///{tmp_path}/ledger.sqlite") as ledger:
        plan_key, orders = make_plan(region, tmp_path / "plan", teachers=40, seed=9)
        done = push_orders(ledger, registry.url, orders, PushOptions(**{**CLIENT, "timeout_s": 0.3},
                                                                      max_attempts=12))
        assert done.outcome == "completed", done
        met = [r for r in registry_table(db, "requests") if r["fault"] == "in_progress"]
        assert met and {r["http_status"] for r in met} == {425 if reading == "docs" else 409}
        outcomes = Counter(e["outcome"] for e in ledger.order_events(plan_key=plan_key))
        assert outcomes["conflict" if reading == "other" else "server_error"] >= len(met)
        assert {r["status"] for r in ledger.plan_orders(plan_key)} <= {"accepted", "rejected", "blocked"}
        assert len(registry_orders(db)) == len(orders.orders)
        assert_agree(ledger, plan_key, db)


# ------------------------------------------------------------------------------------------------
# the ledger on PostgreSQL
# ------------------------------------------------------------------------------------------------

def test_push_and_check_with_the_ledger_on_postgresql(region, postgres, tmp_path):
    from sqlalchemy import create_engine, inspect, text

    url = postgres.create_database()
    # a ledger made before plan keys grew: VARCHAR(64) plan_key columns
    with Ledger(url):
        pass
    engine = create_engine(url)
    with engine.begin() as connection:
        for table in ("registry_orders", "registry_events", "registry_pushes"):
            connection.execute(text(f"ALTER TABLE {table} ALTER COLUMN plan_key TYPE VARCHAR(64)"))
    ledger_module._schema_done.clear()

    plan_dir = tmp_path / "plan"
    plan_key, orders = make_plan(region, plan_dir, teachers=60, seed=10)
    assert len(plan_key) == 69
    db = seeded(tmp_path, region["export"], spent={orders.orders[0]["certificate_id"]: 10**9})
    runner = CliRunner()
    with RegistryServer(db, faults={"seed": 2, "pending": 0.3, "pending_s": 0.5, "error_after": 0.05},
                        reading="other", log_dir=tmp_path) as registry:
        pushed = runner.invoke(registry_app, ["push", str(plan_dir), "--bundle", str(region["bundle"]), "--registry",
                                              registry.url, "--database", url, "--backoff", "0.02", "--poll", "0.2",
                                              "--quiet"])
        assert pushed.exit_code == 0, pushed.output
        checked = runner.invoke(registry_app, ["status", str(plan_dir), "--database", url, "--check", "--registry",
                                               registry.url, "--json"])
        assert checked.exit_code == 0, checked.output
        report = json.loads(checked.output)
        assert report["reconciliation"]["matches"], report["reconciliation"]
        assert report["planned"]["orders"] == len(orders.orders) and report["open"]["orders"] == 0
    for table in ("registry_orders", "registry_events", "registry_pushes"):
        column = next(c for c in inspect(engine).get_columns(table) if c["name"] == "plan_key")
        assert column["type"].length >= 69
    engine.dispose()
    with Ledger(url) as ledger:
        assert_agree(ledger, plan_key, db)
        assert plan_status(ledger, plan_key).rejected["orders"] >= 1
