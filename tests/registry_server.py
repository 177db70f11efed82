"""A small personalised-funding registry of our own, for the tests (never part of the product).

There is no public registry API to test against, so this one implements what marshrut expects
(docs/registry-openapi.yaml) over its own SQLite ledger: the catalogue, the vouchers with their
balances, and enrolment orders that debit them. It enforces balances, seats and idempotency
(an order id is one order forever; the same request again gets the same answer; the same id
with a different body is a 409), and it can be told to misbehave:

- `timeout_before`: hang past the client's timeout, without processing the order;
- `timeout_after`: process (accept or reject) the order, then hang: the answer is lost;
- `error_before`: answer 500 without processing;
- `error_after`: process, then answer 500: accepted and the answer lost;
- `down_after`: after this many new orders are processed, the process exits (mid-batch);
- `slow`: take `hang_s` to process a new order (its key is "in progress" meanwhile, so the
  client's retry meets the first request still running);
- `pending` (a fraction) / `pending_certificates`: answer new orders `202 pending`, decided
  `pending_s` seconds later (when anyone next asks);
- `busy`: answer `busy_status` (429) with `Retry-After` of `busy_s` seconds, as delta-seconds or
  as an HTTP date (`busy_form`: `seconds` | `date`);
- `auth_delay_s`: answer a bad API key only after this long (so parallel requests overlap);
- a spent voucher (its balance debited elsewhere) is set up with `seed_registry(spent=...)`.

It follows one of two readings of what docs/registry.md leaves to the registry (`reading`):

| | `docs` (the documented one) | `other` (the other reasonable one) |
| --- | --- | --- |
| a replay (same key, same body) | `200`, `Idempotent-Replayed`, the order's current state | the first answer again, verbatim (status code and body), even if the order moved on |
| the same key while the first request runs | `425 Too Early`, `Retry-After: 1` | `409` (as the IETF Idempotency-Key draft says) |
| several rejection reasons apply | the documented order: ... `already_enrolled`, `no_seats`, `insufficient_balance` | money first: `insufficient_balance`, then `no_seats`, `already_enrolled` |
| a pending order | holds its amount and seat from receipt; decided: accepted (released if the voucher closed meanwhile) | holds nothing; checked in full when decided |

    python tests/registry_server.py serve --db /tmp/registry.sqlite --port 8765 [--api-key K] [--faults JSON]

`RegistryServer` runs it in a subprocess on a free 127.0.0.1 port (kept across restarts);
`export_from_bundle` and `synthetic_export` build registry exports from a region bundle.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import io
import json
import math
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import httpx
import pandas as pd
from fastapi import FastAPI, Header, Request
from fastapi.responses import JSONResponse, Response

REPO = Path(__file__).resolve().parent.parent

SCHEMA = """
CREATE TABLE IF NOT EXISTS programs (registry_id TEXT PRIMARY KEY, provider TEXT, title TEXT, hours REAL,
    form TEXT, price_rub INTEGER, competencies TEXT);
CREATE TABLE IF NOT EXISTS sessions (session_id TEXT PRIMARY KEY, program_id TEXT, start TEXT, "end" TEXT,
    seats INTEGER, taken INTEGER NOT NULL DEFAULT 0, place TEXT);
CREATE TABLE IF NOT EXISTS vouchers (certificate_id TEXT PRIMARY KEY, teacher_id TEXT, nominal_rub INTEGER,
    balance_rub INTEGER, status TEXT);
CREATE TABLE IF NOT EXISTS orders (seq INTEGER PRIMARY KEY AUTOINCREMENT, order_id TEXT UNIQUE NOT NULL,
    certificate_id TEXT, teacher_id TEXT, session_id TEXT, program_id TEXT, amount_rub INTEGER,
    external_ref TEXT, status TEXT, reason_code TEXT, reason TEXT, balance_after_rub INTEGER,
    http_status INTEGER, created_at TEXT, updated_at TEXT, settle_at REAL, first_body TEXT);
CREATE INDEX IF NOT EXISTS orders_ref ON orders (external_ref, seq);
CREATE TABLE IF NOT EXISTS requests (id INTEGER PRIMARY KEY AUTOINCREMENT, order_id TEXT, at TEXT, fault TEXT,
    http_status INTEGER, method TEXT NOT NULL DEFAULT 'POST', at_epoch REAL, not_before REAL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""

FAULT_KINDS = ("timeout_before", "timeout_after", "error_before", "error_after", "slow", "busy")
READINGS = ("docs", "other")
ORDER_FIELDS = ("order_id", "status", "certificate_id", "teacher_id", "session_id", "program_id", "amount_rub",
                "external_ref", "reason_code", "reason", "balance_after_rub", "created_at", "updated_at")


def connect(db: str | Path) -> sqlite3.Connection:
    connection = sqlite3.connect(str(db), check_same_thread=False, timeout=30, isolation_level=None)
    connection.row_factory = sqlite3.Row
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA busy_timeout=30000")
    connection.execute("PRAGMA synchronous=NORMAL")  # WAL: a commit survives the process dying (os._exit)
    connection.executescript(SCHEMA)
    return connection


def seed_registry(db: str | Path, export: dict, *, spent: dict[str, int] | None = None,
                  taken: dict[str, int] | None = None) -> None:
    """Loads an export into the registry's database; `spent` debits vouchers (spent elsewhere),
    `taken` occupies seats of sessions."""
    connection = connect(db)
    spent, taken = spent or {}, taken or {}
    with connection:
        connection.execute("BEGIN")
        connection.executemany("INSERT OR REPLACE INTO programs VALUES (?,?,?,?,?,?,?)", [
            (p["registry_id"], p.get("provider", ""), p["title"], p["hours"], p["form"], p["price_rub"],
             json.dumps(p.get("competencies", []), ensure_ascii=False)) for p in export["programs"]])
        connection.executemany("INSERT OR REPLACE INTO sessions VALUES (?,?,?,?,?,?,?)", [
            (s["session_id"], s["program_id"], s["start"], s["end"], s["seats"], taken.get(s["session_id"], 0),
             json.dumps(s.get("place"), ensure_ascii=False)) for s in export["sessions"]])
        connection.executemany("INSERT OR REPLACE INTO vouchers VALUES (?,?,?,?,?)", [
            (v["certificate_id"], v["teacher_id"], v["nominal_rub"],
             max(0, v["balance_rub"] - spent.get(v["certificate_id"], 0)), v.get("status", "active"))
            for v in export["vouchers"]])
        connection.execute("INSERT OR REPLACE INTO meta VALUES ('registry', ?)", (export.get("registry", ""),))
        connection.execute("COMMIT")
    connection.close()


# ------------------------------------------------------------------------------------------------
# the server
# ------------------------------------------------------------------------------------------------

def create_app(db: str | Path, *, api_key: str | None = None, faults: dict | None = None, reading: str = "docs"):
    if reading not in READINGS:
        raise ValueError(f"reading must be one of {READINGS}")
    app = FastAPI(title=f"test registry of personalised funding ({reading} reading)")
    connection = connect(db)
    lock = threading.Lock()
    in_progress: set[str] = set()  # keys whose first request is being processed (`slow`)
    state = {"faults": dict(faults or {}), "requests": 0, "processed": 0}

    def now() -> str:
        return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")

    def order_json(row) -> dict:
        return {k: row[k] for k in ORDER_FIELDS}

    def unauthorised(request: Request):
        if api_key and request.headers.get("authorization") != f"Bearer {api_key}":
            time.sleep(float(state["faults"].get("auth_delay_s", 0)))
            return JSONResponse({"detail": "invalid or missing API key"}, status_code=401)
        return None

    def fault_for(n: int) -> str | None:
        f = state["faults"]
        rng = random.Random(f"{f.get('seed', 0)}:{n}")
        draw = rng.random()
        edge = 0.0
        for kind in FAULT_KINDS:
            edge += float(f.get(kind, 0.0))
            if draw < edge:
                return kind
        return None

    def log_request(order_id: str, fault: str | None, status: int, method: str = "POST",
                    not_before: float | None = None) -> None:
        connection.execute("INSERT INTO requests (order_id, at, fault, http_status, method, at_epoch, not_before) "
                           "VALUES (?,?,?,?,?,?,?)", (order_id, now(), fault, status, method, time.time(), not_before))

    def goes_pending(body: dict) -> bool:
        f = state["faults"]
        if body.get("certificate_id") in set(f.get("pending_certificates", ())):
            return True
        return random.Random(f"{f.get('seed', 0)}:pending:{body['order_id']}").random() < float(f.get("pending", 0))

    def decide(body: dict) -> tuple[str, str | None, str | None, int | None]:
        voucher = connection.execute("SELECT * FROM vouchers WHERE certificate_id=?",
                                     (body.get("certificate_id"),)).fetchone()
        session = connection.execute("SELECT * FROM sessions WHERE session_id=?", (body.get("session_id"),)).fetchone()
        if voucher is None:
            return "rejected", "unknown_certificate", "сертификат не найден", None
        balance = voucher["balance_rub"]
        if voucher["status"] != "active":
            return "rejected", "voucher_inactive", f"сертификат {voucher['status']}", balance
        if voucher["teacher_id"] != body.get("teacher_id"):
            return "rejected", "certificate_mismatch", "сертификат другого педагога", balance
        if session is None:
            return "rejected", "unknown_session", "сессия не найдена", balance
        program = connection.execute("SELECT * FROM programs WHERE registry_id=?", (session["program_id"],)).fetchone()
        if body.get("program_id") and body["program_id"] != session["program_id"]:
            return "rejected", "program_mismatch", "сессия другой программы", balance
        if program is not None and int(body.get("amount_rub", -1)) != program["price_rub"]:
            return "rejected", "price_mismatch", f"цена программы {program['price_rub']} руб.", balance
        # pending orders hold the enrolment in the documented reading, not in the other one
        holding = "('accepted','pending')" if reading == "docs" else "('accepted')"
        enrolled = connection.execute(
            f"SELECT order_id FROM orders WHERE certificate_id=? AND session_id=? AND status IN {holding} "
            "AND order_id<>?", (voucher["certificate_id"], session["session_id"], body["order_id"])).fetchone()
        checks = {
            "already_enrolled": (enrolled is not None,
                                 f"уже зачислен заявкой {enrolled['order_id']}" if enrolled else ""),
            "no_seats": (session["taken"] >= session["seats"], "нет свободных мест"),
            "insufficient_balance": (balance < int(body["amount_rub"]),
                                     f"остаток сертификата {balance} руб. меньше суммы {body['amount_rub']} руб."),
        }
        order = ("already_enrolled", "no_seats", "insufficient_balance") if reading == "docs" else \
            ("insufficient_balance", "no_seats", "already_enrolled")
        for code in order:
            failed, reason = checks[code]
            if failed:
                return "rejected", code, reason, balance
        return "accepted", None, None, balance - int(body["amount_rub"])

    def hold(body: dict, sign: int) -> None:
        """Debits the voucher and takes the seat (sign 1), or gives them back (-1)."""
        connection.execute("UPDATE vouchers SET balance_rub = balance_rub - ? WHERE certificate_id=?",
                           (sign * int(body["amount_rub"]), body["certificate_id"]))
        connection.execute("UPDATE sessions SET taken = taken + ? WHERE session_id=?", (sign, body["session_id"]))

    def settle() -> None:
        """Decides the pending orders whose time has come (called under the lock by every request)."""
        due = connection.execute("SELECT * FROM orders WHERE status='pending' AND settle_at<=? ORDER BY seq",
                                 (time.time(),)).fetchall()
        for row in due:
            connection.execute("BEGIN IMMEDIATE")
            body = dict(row)
            if reading == "docs":  # held since receipt: accepted, unless the voucher closed meanwhile
                voucher = connection.execute("SELECT * FROM vouchers WHERE certificate_id=?",
                                             (row["certificate_id"],)).fetchone()
                if voucher["status"] == "active":
                    status, code, reason, balance = "accepted", None, None, row["balance_after_rub"]
                else:
                    hold(body, -1)
                    status, code, reason = "rejected", "voucher_inactive", f"сертификат {voucher['status']}"
                    balance = voucher["balance_rub"] + row["amount_rub"]
            else:  # nothing held: checked in full now
                status, code, reason, balance = decide(body)
                if status == "accepted":
                    hold(body, 1)
            connection.execute("UPDATE orders SET status=?, reason_code=?, reason=?, balance_after_rub=?, "
                               "updated_at=? WHERE order_id=?", (status, code, reason, balance, now(), row["order_id"]))
            connection.execute("COMMIT")

    def process(body: dict) -> tuple[int, dict, bool]:
        """(HTTP status, order, replayed) under the lock, in one transaction."""
        settle()
        connection.execute("BEGIN IMMEDIATE")
        try:
            row = connection.execute("SELECT * FROM orders WHERE order_id=?", (body["order_id"],)).fetchone()
            if row is not None:
                same = (row["certificate_id"], row["session_id"], row["amount_rub"], row["teacher_id"]) == (
                    body.get("certificate_id"), body.get("session_id"), body.get("amount_rub"), body.get("teacher_id"))
                connection.execute("COMMIT")
                if not same:
                    return 409, {"detail": "idempotency_conflict: this order id was used for a different order"}, False
                if reading == "docs":
                    return 200, order_json(row), True
                return row["http_status"], json.loads(row["first_body"]), True
            status, code, reason, balance = decide(body)
            settle_at = None
            if goes_pending(body) and (status == "accepted" or reading == "other"):
                settle_at = time.time() + float(state["faults"].get("pending_s", 1.0))
                if reading == "other":  # holds nothing: decided in full when it settles
                    code = reason = None
                    balance = None
                status = "pending"
            if status == "accepted" or (status == "pending" and reading == "docs"):
                hold(body, 1)
            http_status = {"accepted": 201, "pending": 202, "rejected": 422}[status]
            stamp = now()
            connection.execute(
                "INSERT INTO orders (order_id, certificate_id, teacher_id, session_id, program_id, amount_rub, "
                "external_ref, status, reason_code, reason, balance_after_rub, http_status, created_at, updated_at, "
                "settle_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (body["order_id"], body.get("certificate_id"), body.get("teacher_id"), body.get("session_id"),
                 body.get("program_id"), int(body["amount_rub"]), body.get("external_ref"), status, code, reason,
                 balance, http_status, stamp, stamp, settle_at))
            row = connection.execute("SELECT * FROM orders WHERE order_id=?", (body["order_id"],)).fetchone()
            connection.execute("UPDATE orders SET first_body=? WHERE order_id=?",
                               (json.dumps(order_json(row), ensure_ascii=False), body["order_id"]))
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        return http_status, order_json(row), False

    def busy_answer(order_id: str) -> JSONResponse:
        f = state["faults"]
        seconds = float(f.get("busy_s", 1))
        status = int(f.get("busy_status", 429))
        if f.get("busy_form", "seconds") == "date":
            not_before = float(math.ceil(time.time() + seconds))  # an HTTP date has whole seconds
            header = email.utils.formatdate(not_before, usegmt=True)
        else:
            not_before = time.time() + math.ceil(seconds)
            header = str(math.ceil(seconds))
        log_request(order_id, "busy", status, not_before=not_before)
        return JSONResponse({"detail": "busy, try later"}, status_code=status, headers={"Retry-After": header})

    @app.post("/v1/orders")
    def create_order(request: Request, body: dict, idempotency_key: str | None = Header(None)):
        denied = unauthorised(request)
        if denied:
            return denied
        required = ("order_id", "certificate_id", "teacher_id", "session_id", "amount_rub")
        if any(k not in body for k in required) or not isinstance(body.get("amount_rub"), int):
            return JSONResponse({"detail": f"malformed order: {', '.join(required)} required"}, status_code=400)
        if idempotency_key != body["order_id"]:
            return JSONResponse({"detail": "Idempotency-Key must equal order_id"}, status_code=400)
        with lock:
            if body["order_id"] in in_progress:  # the first request with this key is still running
                log_request(body["order_id"], "in_progress", 425 if reading == "docs" else 409)
                if reading == "docs":
                    return JSONResponse({"detail": "a request with this Idempotency-Key is being processed"},
                                        status_code=425, headers={"Retry-After": "1"})
                return JSONResponse({"detail": "a request with this Idempotency-Key is being processed"},
                                    status_code=409)
            state["requests"] += 1
            fault = fault_for(state["requests"])
            if fault == "busy":
                return busy_answer(body["order_id"])
            if fault in ("timeout_before", "error_before"):
                log_request(body["order_id"], fault, 500)
            known = connection.execute("SELECT 1 FROM orders WHERE order_id=?", (body["order_id"],)).fetchone()
            if fault == "slow" and known is None:
                in_progress.add(body["order_id"])
        hang = float(state["faults"].get("hang_s", 2.0))
        if fault == "timeout_before":
            time.sleep(hang)
            return JSONResponse({"detail": "too late"}, status_code=504)
        if fault == "error_before":
            return JSONResponse({"detail": "internal error (before processing)"}, status_code=500)
        if fault == "slow" and known is None:
            time.sleep(hang)
        with lock:
            try:
                status, answer, replayed = process(body)
            finally:
                in_progress.discard(body["order_id"])
            log_request(body["order_id"], fault, status)
            if not replayed and status != 409:
                state["processed"] += 1
            down_after = state["faults"].get("down_after")
            if down_after is not None and not replayed and state["processed"] >= int(down_after):
                os._exit(3)  # down mid-batch, right after committing: the answer is lost too
        if fault == "timeout_after":
            time.sleep(hang)
        if fault == "error_after":
            return JSONResponse({"detail": "internal error (after processing)"}, status_code=500)
        headers = {"Idempotent-Replayed": "true"} if replayed else {}
        return JSONResponse(answer, status_code=status, headers=headers)

    @app.get("/v1/orders/{order_id}")
    def read_order(order_id: str, request: Request):
        denied = unauthorised(request)
        if denied:
            return denied
        with lock:
            settle()
            row = connection.execute("SELECT * FROM orders WHERE order_id=?", (order_id,)).fetchone()
            log_request(order_id, None, 404 if row is None else 200, method="GET")
        if row is None:
            return JSONResponse({"detail": "order not found"}, status_code=404)
        return order_json(row)

    @app.get("/v1/orders")
    def list_orders(request: Request, external_ref: str, after: int = 0, limit: int = 1000):
        denied = unauthorised(request)
        if denied:
            return denied
        with lock:
            settle()
            rows = connection.execute("SELECT * FROM orders WHERE external_ref=? AND seq>? ORDER BY seq LIMIT ?",
                                      (external_ref, after, min(limit, 5000))).fetchall()
        items = [order_json(r) for r in rows]
        return {"items": items, "next": str(rows[-1]["seq"]) if len(rows) == min(limit, 5000) else None}

    @app.delete("/v1/orders/{order_id}")
    def cancel_order(order_id: str, request: Request):
        denied = unauthorised(request)
        if denied:
            return denied
        with lock:
            settle()
            connection.execute("BEGIN IMMEDIATE")
            row = connection.execute("SELECT * FROM orders WHERE order_id=?", (order_id,)).fetchone()
            if row is None:
                connection.execute("COMMIT")
                return JSONResponse({"detail": "order not found"}, status_code=404)
            if row["status"] == "accepted" or (row["status"] == "pending" and reading == "docs"):
                hold(dict(row), -1)
            if row["status"] in ("accepted", "pending"):
                connection.execute("UPDATE orders SET status='cancelled', updated_at=? WHERE order_id=?",
                                   (now(), order_id))
            connection.execute("COMMIT")
            row = connection.execute("SELECT * FROM orders WHERE order_id=?", (order_id,)).fetchone()
        return order_json(row)

    @app.post("/_admin/orders/{order_id}")
    def edit_order(order_id: str, changes: dict):
        """What a registry's operator may do to an order: move an accepted enrolment to another
        session (its seat moves too), or rewrite a rejection's reason."""
        with lock:
            connection.execute("BEGIN IMMEDIATE")
            row = connection.execute("SELECT * FROM orders WHERE order_id=?", (order_id,)).fetchone()
            if "session_id" in changes and row["status"] == "accepted":
                connection.execute("UPDATE sessions SET taken = taken - 1 WHERE session_id=?", (row["session_id"],))
                connection.execute("UPDATE sessions SET taken = taken + 1 WHERE session_id=?",
                                   (changes["session_id"],))
            for column in ("session_id", "reason_code", "reason"):
                if column in changes:
                    connection.execute(f"UPDATE orders SET {column}=?, updated_at=? WHERE order_id=?",  # noqa: S608
                                       (changes[column], now(), order_id))
            connection.execute("COMMIT")
            return order_json(connection.execute("SELECT * FROM orders WHERE order_id=?", (order_id,)).fetchone())

    @app.get("/v1/vouchers/{certificate_id}")
    def read_voucher(certificate_id: str, request: Request):
        denied = unauthorised(request)
        if denied:
            return denied
        with lock:
            row = connection.execute("SELECT * FROM vouchers WHERE certificate_id=?", (certificate_id,)).fetchone()
        if row is None:
            return JSONResponse({"detail": "voucher not found"}, status_code=404)
        return dict(row)

    @app.get("/v1/export")
    def export(request: Request, format: str = "json"):
        denied = unauthorised(request)
        if denied:
            return denied
        with lock:
            data = dump_export(connection)
        if format == "csv":
            return Response(export_zip(data), media_type="application/zip")
        return data

    @app.post("/_admin/faults")
    def set_faults(body: dict):
        state["faults"] = dict(body)
        return state["faults"]

    @app.get("/_admin/stats")
    def stats():
        return {"requests": state["requests"], "processed": state["processed"], "faults": state["faults"]}

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    return app


def dump_export(connection: sqlite3.Connection) -> dict:
    registry = connection.execute("SELECT value FROM meta WHERE key='registry'").fetchone()
    return {
        "registry": registry[0] if registry else "",
        "exported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "programs": [{"registry_id": r["registry_id"], "provider": r["provider"], "title": r["title"],
                      "hours": r["hours"], "form": r["form"], "price_rub": r["price_rub"],
                      "competencies": json.loads(r["competencies"])}
                     for r in connection.execute("SELECT * FROM programs ORDER BY registry_id")],
        "sessions": [{"session_id": r["session_id"], "program_id": r["program_id"], "start": r["start"],
                      "end": r["end"], "seats": r["seats"] - r["taken"], "place": json.loads(r["place"])}
                     for r in connection.execute("SELECT * FROM sessions ORDER BY session_id")],
        "vouchers": [{"certificate_id": r["certificate_id"], "teacher_id": r["teacher_id"],
                      "nominal_rub": r["nominal_rub"], "balance_rub": r["balance_rub"], "status": r["status"]}
                     for r in connection.execute("SELECT * FROM vouchers ORDER BY certificate_id")],
    }


def registry_orders(db: str | Path) -> list[dict]:
    """The registry's own ledger of orders, read straight from its database."""
    connection = connect(db)
    try:
        return [dict(r) for r in connection.execute("SELECT * FROM orders ORDER BY seq")]
    finally:
        connection.close()


# our ledger's column for each field of the registry's order
LEDGER_COLUMN = {"order_id": "order_id", "status": "status", "certificate_id": "certificate_id",
                 "teacher_id": "teacher_id", "session_id": "registry_session_id", "program_id": "program_id",
                 "amount_rub": "amount_rub", "reason_code": "reason_code", "reason": "reason",
                 "balance_after_rub": "balance_after_rub"}


def ledger_differences(ours: list[dict], theirs: list[dict]) -> list[tuple]:
    """Every (order id, field, ours, theirs) where marshrut's ledger and the registry's disagree,
    over every field both keep; orders only one side has show as field `*`. Orders never sent
    (blocked, new) are not expected at the registry."""
    mine = {r["order_id"]: r for r in ours if r["status"] not in ("blocked", "new")}
    registry = {r["order_id"]: r for r in theirs}
    found = [(oid, "*", "ledger" if oid in mine else None, "registry" if oid in registry else None)
             for oid in sorted(set(mine) ^ set(registry))]
    for oid in sorted(set(mine) & set(registry)):
        for field, column in LEDGER_COLUMN.items():
            if mine[oid][column] != registry[oid][field]:
                found.append((oid, field, mine[oid][column], registry[oid][field]))
    return found


def registry_table(db: str | Path, table: str) -> list[dict]:
    connection = connect(db)
    try:
        return [dict(r) for r in connection.execute(f"SELECT * FROM {table}")]  # noqa: S608 (test helper)
    finally:
        connection.close()


class RegistryServer:
    """The registry in a subprocess on 127.0.0.1; `restart()` keeps the port and the database."""

    def __init__(self, db: str | Path, *, api_key: str | None = None, faults: dict | None = None,
                 log_dir: Path | None = None, reading: str = "docs") -> None:
        from api_server import free_port

        self.db = Path(db)
        self.api_key, self.faults, self.reading = api_key, faults or {}, reading
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(log_dir or tempfile.mkdtemp(prefix="marshrut-registry-")) / f"registry-{self.port}.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> RegistryServer:
        command = [sys.executable, str(Path(__file__).resolve()), "serve", "--db", str(self.db), "--port",
                   str(self.port), "--faults", json.dumps(self.faults), "--reading", self.reading]
        if self.api_key:
            command += ["--api-key", self.api_key]
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True,
                                        env={**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"})
        log.close()
        from api_server import wait_until_healthy

        wait_until_healthy(self.process, self.url, timeout, self.log, what="the registry", poll=0.05)
        return self

    def log(self) -> str:
        from api_server import log_tail

        return log_tail(self.log_path, 4000)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def set_faults(self, faults: dict) -> None:
        self.faults = dict(faults)
        httpx.post(self.url + "/_admin/faults", json=self.faults, timeout=5).raise_for_status()

    def stop(self) -> None:
        from api_server import terminate

        if self.process is None:
            return
        terminate(self.process, grace=10)
        self.process = None

    def restart(self, faults: dict | None = None) -> RegistryServer:
        self.stop()
        if faults is not None:
            self.faults = faults
        return self.start()

    def __enter__(self) -> RegistryServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# ------------------------------------------------------------------------------------------------
# exports built from a bundle
# ------------------------------------------------------------------------------------------------

def _read(bundle: Path, file: str) -> pd.DataFrame:
    return pd.read_csv(Path(bundle) / file, dtype=str, keep_default_na=False)


def export_from_bundle(bundle: str | Path, *, registry: str = "Тестовый реестр", exported_at: str | None = None,
                       code_prefix: str = "ПК-") -> dict:
    """The bundle's own catalogue and vouchers as a registry would export them: registry program
    ids are the bundle's registry_id, sessions `RS-<session_id>`, certificates `С-<teacher_id>`,
    competency codes `<code_prefix><competency_id>` (map them with `identity_mapping`)."""
    bundle = Path(bundle)
    programs, links = _read(bundle, "programs.csv"), _read(bundle, "program_competencies.csv")
    sessions, teachers = _read(bundle, "program_sessions.csv"), _read(bundle, "teachers.csv")
    municipalities = _read(bundle, "municipalities.csv").set_index("municipality_id")["name"].to_dict()
    codes: dict[str, list] = {}
    for row in links.itertuples(index=False):
        codes.setdefault(row.program_id, []).append({"code": code_prefix + row.competency_id,
                                                     "weight": float(row.weight)})
    registry_of = dict(zip(programs["program_id"], programs["registry_id"]))
    return {
        "registry": registry,
        "exported_at": exported_at or "2026-08-20T09:00:00+00:00",
        "programs": [{"registry_id": p.registry_id, "provider": p.provider, "title": p.name, "hours": float(p.hours),
                      "form": p.format, "price_rub": int(p.price_rub), "competencies": codes.get(p.program_id, [])}
                     for p in programs.itertuples(index=False)],
        "sessions": [{"session_id": f"RS-{s.session_id}", "program_id": registry_of[s.program_id], "start": s.start,
                      "end": s.end, "seats": int(s.seats),
                      "place": {"municipality_code": s.municipality_id,
                                "municipality_name": municipalities.get(s.municipality_id, "")}
                      if s.municipality_id else None}
                     for s in sessions.itertuples(index=False)],
        "vouchers": [{"certificate_id": f"С-{t.teacher_id}", "teacher_id": t.teacher_id,
                      "nominal_rub": int(t.voucher_rub), "balance_rub": int(t.voucher_rub), "status": "active"}
                     for t in teachers.itertuples(index=False)],
    }


def identity_mapping(bundle: str | Path, path: str | Path, code_prefix: str = "ПК-", extra: dict | None = None) -> Path:
    """A competency mapping file `registry_code, competency_id, weight` for `export_from_bundle`'s codes."""
    competencies = _read(Path(bundle), "competencies.csv")["competency_id"]
    rows = [(code_prefix + c, c, "1") for c in competencies] + [(k, v, "1") for k, v in (extra or {}).items()]
    pd.DataFrame(rows, columns=["registry_code", "competency_id", "weight"]).to_csv(path, index=False)
    return Path(path)


def synthetic_export(bundle: str | Path, *, programs: int = 2000, sessions_per_program: int = 3,
                     vouchers: int = 20000, seed: int = 0, code_prefix: str = "ПК-",
                     exported_at: str = "2026-08-20T09:00:00+00:00") -> dict:
    """A large export for the bundle's region: `programs` programs with sessions inside the
    period (a few outside it), `vouchers` vouchers (the bundle's teachers first), and some
    competency codes that no mapping knows (`ЛК-*`)."""
    import numpy as np

    bundle = Path(bundle)
    rng = np.random.default_rng(seed)
    region = json.loads((bundle / "region.json").read_text(encoding="utf-8"))
    start = dt.date.fromisoformat(region["period_start"])
    span = (dt.date.fromisoformat(region["period_end"]) - start).days
    competencies = list(_read(bundle, "competencies.csv")["competency_id"])
    municipalities = _read(bundle, "municipalities.csv")
    teachers = list(_read(bundle, "teachers.csv")["teacher_id"])
    out_programs, out_sessions = [], []
    for i in range(programs):
        rid = f"РП-{i + 1:05d}"
        form = ("online", "offline", "blended")[int(rng.integers(0, 3))]
        chosen = rng.choice(len(competencies), size=int(rng.integers(1, 4)), replace=False)
        codes = [{"code": code_prefix + competencies[c], "weight": round(float(rng.uniform(0.3, 1.0)), 2)}
                 for c in chosen]
        if i % 50 == 0:
            codes.append({"code": f"ЛК-{i % 7}", "weight": 0.5})
        out_programs.append({"registry_id": rid, "provider": f"Провайдер {i % 40 + 1}",
                             "title": f"Программа повышения квалификации № {i + 1}",
                             "hours": float(rng.choice([16, 24, 36, 72])), "form": form,
                             "price_rub": int(rng.integers(20, 150)) * 100, "competencies": codes})
        for j in range(sessions_per_program):
            first = int(rng.integers(0, span - 30))
            length = int(rng.integers(0, 21))
            if i % 200 == 0 and j == 0:
                first = span + 10  # outside the period
            m = municipalities.iloc[int(rng.integers(0, len(municipalities)))]
            place = None
            if form != "online":
                place = ({"municipality_code": m["municipality_id"]} if j % 2 == 0
                         else {"municipality_code": f"OKTMO-{j}", "municipality_name": m["name"]})
            out_sessions.append({"session_id": f"{rid}/{j + 1}", "program_id": rid,
                                 "start": (start + dt.timedelta(days=first)).isoformat(),
                                 "end": (start + dt.timedelta(days=first + length)).isoformat(),
                                 "seats": int(rng.integers(10, 40)), "place": place})
    out_vouchers = []
    for k in range(vouchers):
        teacher = teachers[k] if k < len(teachers) else f"EXT{k:06d}"
        nominal = int(rng.integers(10, 40)) * 1000
        out_vouchers.append({"certificate_id": f"С-{k + 1:06d}", "teacher_id": teacher, "nominal_rub": nominal,
                             "balance_rub": nominal - int(rng.integers(0, 5)) * 1000,
                             "status": "suspended" if k % 997 == 5 else "active"})
    return {"registry": "Реестр ПФ ДПО (синтетический)", "exported_at": exported_at, "programs": out_programs,
            "sessions": out_sessions, "vouchers": out_vouchers}


def export_zip(export: dict) -> bytes:
    """The CSV form of an export (programs.csv, sessions.csv, vouchers.csv, meta.json) as a .zip."""
    programs = pd.DataFrame([{**{k: p[k] for k in ("registry_id", "provider", "title", "hours", "form", "price_rub")},
                              "competencies": ";".join(f"{c['code']}:{c['weight']}" for c in p["competencies"])}
                             for p in export["programs"]])
    sessions = pd.DataFrame([{**{k: s[k] for k in ("session_id", "program_id", "start", "end", "seats")},
                              **{k: (s.get("place") or {}).get(k, "") for k in
                                 ("municipality_code", "municipality_name", "address")}}
                             for s in export["sessions"]])
    vouchers = pd.DataFrame(export["vouchers"])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, frame in (("programs.csv", programs), ("sessions.csv", sessions), ("vouchers.csv", vouchers)):
            archive.writestr(name, frame.to_csv(index=False, lineterminator="\n"))
        archive.writestr("meta.json", json.dumps({"registry": export.get("registry", ""),
                                                  "exported_at": export.get("exported_at")}, ensure_ascii=False))
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    import argparse

    import uvicorn

    parser = argparse.ArgumentParser(description="the test registry of personalised funding")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve")
    serve.add_argument("--db", required=True)
    serve.add_argument("--port", type=int, required=True)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--api-key")
    serve.add_argument("--faults", default="{}")
    serve.add_argument("--reading", choices=READINGS, default="docs",
                       help="how to read what the docs leave to the registry (see the module's docstring)")
    args = parser.parse_args(argv)
    app = create_app(args.db, api_key=args.api_key, faults=json.loads(args.faults), reading=args.reading)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", timeout_keep_alive=30)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
