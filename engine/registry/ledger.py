"""The ledger: every enrolment order marshrut sends to a registry, and every answer, in a database.

SQLite by default, PostgreSQL by URL (the API's database: `MARSHRUT_DATABASE_URL`), through
SQLAlchemy 2 Core. Tables:

- `registry_orders`: one row per order (order id, plan, teacher, session, certificate, amount),
  its state and the registry's last answer. An order id is never reused for anything else and a
  (plan, teacher, session) never gets a second id (unique constraint).
- `registry_events`: every attempt and answer (HTTP status, outcome, detail), append-only.
- `registry_pushes`: one row per plan: who is pushing it (a lease, so two pushes of one plan never
  run at once; a crashed pusher's lease is taken over) and how the last push ended.
- `registry_imports`: imports done through the API (source region, new region, report).

Order states: `new` (recorded, never sent), `sent` (sent at least once, no final answer yet:
possibly accepted), `pending` (the registry has it, undecided), `accepted`, `rejected`, `cancelled`
(final answers of the registry), `blocked` (refused locally before sending: no certificate, the
voucher would be overdrawn, already ordered by another plan), `error` (the registry refused the
request itself, a 4xx: sent again by the next push once the cause is fixed).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import threading
import time
from collections.abc import Iterable

from sqlalchemy import (BigInteger, Boolean, Column, DateTime, Index, Integer, MetaData, String, Table, Text,
                        UniqueConstraint, func, insert, select, update)
from sqlalchemy.engine import Engine

from ..database import make_engine as _make_engine
from sqlalchemy.exc import DBAPIError, IntegrityError

STATES = ("new", "sent", "pending", "accepted", "rejected", "cancelled", "blocked", "error")
FINAL = ("accepted", "rejected", "cancelled")
# may have reached the registry and may be (or become) accepted: count against the voucher
IN_FLIGHT = ("sent", "pending")
TO_PROCESS = ("sent", "pending", "new", "error", "blocked")

# A plan key: the API's plan id (32 hex digits) or, for a plan folder, `plan-` + the SHA-256 of its
# assignments.csv in hex (69 characters); room for longer keys. Ledgers made with String(64)
# columns are widened by ensure_schema (PostgreSQL enforces the length; SQLite does not).
PLAN_KEY_LENGTH = 128

metadata = MetaData()

orders = Table(
    "registry_orders", metadata,
    Column("order_id", String(36), primary_key=True),
    Column("plan_key", String(PLAN_KEY_LENGTH), nullable=False, index=True),
    Column("plan_ref", String(500), nullable=False, default=""),
    Column("teacher_id", String(200), nullable=False),
    Column("session_id", String(200), nullable=False),  # the bundle's program session id
    Column("registry_session_id", String(200), nullable=False),
    Column("program_id", String(200), nullable=False, default=""),  # the registry's program id
    Column("certificate_id", String(200), nullable=True),
    Column("amount_rub", BigInteger, nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("reason_code", String(64), nullable=True),
    Column("reason", Text, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("http_status", Integer, nullable=True),
    Column("balance_after_rub", BigInteger, nullable=True),
    Column("registry_url", String(500), nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("first_sent_at", DateTime, nullable=True),
    Column("answered_at", DateTime, nullable=True),
    Column("updated_at", DateTime, nullable=False),
    UniqueConstraint("plan_key", "teacher_id", "registry_session_id", name="uq_registry_order_enrolment"),
)
Index("ix_registry_orders_enrolment", orders.c.certificate_id, orders.c.registry_session_id)

events = Table(
    "registry_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("order_id", String(36), nullable=False, index=True),
    Column("plan_key", String(PLAN_KEY_LENGTH), nullable=False, index=True),
    Column("at", DateTime, nullable=False),
    Column("attempt", Integer, nullable=False, default=0),
    Column("http_status", Integer, nullable=True),
    # accepted | rejected | pending | cancelled | timeout | connection_error | server_error
    # | client_error | bad_answer | conflict | not_found | blocked | reconciled
    Column("outcome", String(32), nullable=False),
    Column("detail", Text, nullable=True),
    Column("elapsed_ms", Integer, nullable=True),
)

pushes = Table(
    "registry_pushes", metadata,
    Column("plan_key", String(PLAN_KEY_LENGTH), primary_key=True),
    Column("plan_ref", String(500), nullable=False, default=""),
    Column("state", String(16), nullable=False),  # running | completed | stopped | failed
    Column("owner", String(200), nullable=True),
    Column("heartbeat_at", DateTime, nullable=True),
    Column("started_at", DateTime, nullable=True),
    Column("finished_at", DateTime, nullable=True),
    Column("runs", Integer, nullable=False, default=0),
    Column("result", Text, nullable=True),  # JSON: the last PushResult
)

imports = Table(
    "registry_imports", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source_region_id", String(32), nullable=True, index=True),
    Column("region_id", String(32), nullable=True),
    Column("source", String(1000), nullable=False, default=""),
    Column("registry", String(500), nullable=True),
    Column("exported_at", String(40), nullable=True),
    Column("export_sha256", String(64), nullable=True),
    Column("changed", Boolean, nullable=False, default=False),
    Column("report", Text, nullable=True),
    Column("at", DateTime, nullable=False),
)


def utcnow() -> dt.datetime:
    """Naive UTC, like the API's tables (SQLite keeps no time zone)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def dumps(value) -> str:
    return json.dumps(value, ensure_ascii=True, allow_nan=False, separators=(",", ":"), default=str)


def make_engine(url: str) -> Engine:
    # The ledger's tables carry no foreign keys to enforce.
    return _make_engine(url, foreign_keys=False)


_schema_lock = threading.Lock()
_schema_done: set[int] = set()


def ensure_schema(engine: Engine) -> None:
    """Creates the ledger's tables if missing (once per engine; racing processes retry)."""
    with _schema_lock:
        if id(engine) in _schema_done:
            return
        for attempt in range(5):
            try:
                metadata.create_all(engine)
                break
            except DBAPIError:
                if attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))
        _widen_plan_keys(engine)
        _schema_done.add(id(engine))


def _widen_plan_keys(engine: Engine) -> None:
    """Ledgers created before plan keys grew to 69 characters have VARCHAR(64) `plan_key`
    columns; PostgreSQL would refuse the longer keys, so they are widened in place (SQLite does
    not enforce lengths)."""
    if engine.dialect.name != "postgresql":
        return
    from sqlalchemy import inspect, text

    inspector = inspect(engine)
    with engine.begin() as connection:
        for table in (orders, events, pushes):
            for column in inspector.get_columns(table.name):
                length = getattr(column["type"], "length", None)
                if column["name"] == "plan_key" and length is not None and length < PLAN_KEY_LENGTH:
                    connection.execute(text(f'ALTER TABLE "{table.name}" ALTER COLUMN plan_key '
                                            f"TYPE VARCHAR({PLAN_KEY_LENGTH})"))


def owner_tag() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def owner_alive(owner: str | None) -> bool:
    """A lease held by a dead process on this host is free at once; elsewhere, only when it expires."""
    if not owner:
        return False
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Ledger:
    """Reads and writes the ledger tables; every write is its own committed transaction."""

    def __init__(self, engine: Engine | str) -> None:
        self.engine = make_engine(engine) if isinstance(engine, str) else engine
        self._own_engine = isinstance(engine, str)
        ensure_schema(self.engine)

    def close(self) -> None:
        if self._own_engine:
            self.engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- orders ---------------------------------------------------------------------------------
    def sync_orders(self, plan_key: str, plan_ref: str, planned: Iterable[dict]) -> dict:
        """Records the plan's orders that the ledger does not have yet. An order never sent may be
        refreshed (certificate, amount from a re-imported bundle); a sent one never changes: it is
        re-sent exactly as first sent. Returns counts of inserted / refreshed / kept rows."""
        planned = list(planned)
        now = utcnow()
        counts = {"inserted": 0, "refreshed": 0, "kept": 0}
        with self.engine.begin() as connection:
            existing = {row.order_id: row for row in connection.execute(
                select(orders).where(orders.c.plan_key == plan_key))}
            fresh = []
            for order in planned:
                row = existing.get(order["order_id"])
                if row is None:
                    fresh.append({**order, "plan_key": plan_key, "plan_ref": plan_ref[:500], "status": "new",
                                  "attempts": 0, "created_at": now, "updated_at": now})
                    continue
                changed = {k: order[k] for k in ("certificate_id", "amount_rub", "program_id", "session_id")
                           if getattr(row, k) != order[k]}
                if changed and row.status in ("new", "blocked") and row.attempts == 0:
                    connection.execute(update(orders).where(orders.c.order_id == row.order_id)
                                       .values(**changed, updated_at=now))
                    counts["refreshed"] += 1
                else:
                    counts["kept"] += 1
            for start in range(0, len(fresh), 500):
                connection.execute(insert(orders), fresh[start:start + 500])
            counts["inserted"] = len(fresh)
        return counts

    def plan_orders(self, plan_key: str) -> list[dict]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(orders).where(orders.c.plan_key == plan_key)
                                      .order_by(orders.c.teacher_id, orders.c.registry_session_id))
            return [dict(row._mapping) for row in rows]

    def order(self, order_id: str) -> dict | None:
        with self.engine.connect() as connection:
            row = connection.execute(select(orders).where(orders.c.order_id == order_id)).first()
            return None if row is None else dict(row._mapping)

    def active_elsewhere(self, plan_key: str) -> dict[tuple[str, str], str]:
        """(certificate, registry session) -> order id of another plan that may hold that enrolment."""
        with self.engine.connect() as connection:
            rows = connection.execute(select(orders.c.certificate_id, orders.c.registry_session_id,
                                             orders.c.order_id, orders.c.plan_key)
                                      .where(orders.c.plan_key != plan_key,
                                             orders.c.status.in_(IN_FLIGHT + ("accepted",)),
                                             orders.c.certificate_id.is_not(None)))
            return {(r.certificate_id, r.registry_session_id): f"{r.order_id} (plan {r.plan_key})" for r in rows}

    def mark_sent(self, order_id: str, registry_url: str, plan_key: str | None = None,
                  owner: str | None = None) -> int:
        """Before a request leaves: the order is `sent` (outcome unknown until an answer is
        recorded), so a crash from here on resumes by sending the same order again."""
        now = utcnow()
        with self.engine.begin() as connection:
            connection.execute(update(orders).where(orders.c.order_id == order_id).values(
                status="sent", attempts=orders.c.attempts + 1, registry_url=registry_url[:500],
                first_sent_at=func.coalesce(orders.c.first_sent_at, now), updated_at=now))
            if plan_key and owner:
                connection.execute(update(pushes).where(pushes.c.plan_key == plan_key, pushes.c.owner == owner)
                                   .values(heartbeat_at=now))
            return connection.execute(select(orders.c.attempts).where(orders.c.order_id == order_id)).scalar_one()

    def record(self, order_id: str, plan_key: str, *, outcome: str, attempt: int = 0, http_status: int | None = None,
               detail: str | None = None, elapsed_ms: int | None = None, status: str | None = None,
               reason_code: str | None = None, reason: str | None = None,
               balance_after_rub: int | None = None) -> None:
        """An answer (or a failed attempt) as an event; with `status`, the order's new state."""
        now = utcnow()
        with self.engine.begin() as connection:
            connection.execute(insert(events).values(
                order_id=order_id, plan_key=plan_key, at=now, attempt=attempt, http_status=http_status,
                outcome=outcome, detail=None if detail is None else detail[:2000], elapsed_ms=elapsed_ms))
            values: dict = {"updated_at": now}
            if http_status is not None:
                values["http_status"] = http_status
            if status is not None:
                values.update(status=status, reason_code=None if reason_code is None else reason_code[:64],
                              reason=None if reason is None else reason[:2000])
                if status in FINAL + ("pending",):
                    values["answered_at"] = now
                if balance_after_rub is not None:
                    values["balance_after_rub"] = balance_after_rub
            connection.execute(update(orders).where(orders.c.order_id == order_id).values(**values))

    def adopt(self, order_id: str, plan_key: str, values: dict, *, detail: str) -> bool:
        """Reconciliation: the registry's values for the order's columns, with a `reconciled` event.
        False (nothing changed) if they cannot be taken, e.g. a session this plan already holds
        for the teacher (one order per plan, teacher and session)."""
        now = utcnow()
        values = dict(values)
        for column, limit in (("reason_code", 64), ("reason", 2000)):
            if values.get(column) is not None:
                values[column] = values[column][:limit]
        try:
            with self.engine.begin() as connection:
                connection.execute(insert(events).values(order_id=order_id, plan_key=plan_key, at=now, attempt=0,
                                                         outcome="reconciled", detail=detail[:2000]))
                extra = {"answered_at": now} if values.get("status") in FINAL + ("pending",) else {}
                connection.execute(update(orders).where(orders.c.order_id == order_id)
                                   .values(**values, **extra, updated_at=now))
        except IntegrityError:
            return False
        return True

    def has_orders(self, plan_key: str) -> bool:
        with self.engine.connect() as connection:
            return connection.execute(select(orders.c.order_id).where(orders.c.plan_key == plan_key)
                                      .limit(1)).first() is not None

    def order_events(self, order_id: str | None = None, plan_key: str | None = None) -> list[dict]:
        query = select(events).order_by(events.c.id)
        if order_id is not None:
            query = query.where(events.c.order_id == order_id)
        if plan_key is not None:
            query = query.where(events.c.plan_key == plan_key)
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]

    # ---- the push lease -------------------------------------------------------------------------
    def claim(self, plan_key: str, plan_ref: str, owner: str, lease_seconds: float) -> dict | None:
        """Takes the plan's push lease; None (and the holder's row) if another live pusher holds it."""
        now = utcnow()
        cutoff = now - dt.timedelta(seconds=lease_seconds)
        for _ in range(5):
            try:
                with self.engine.begin() as connection:
                    row = connection.execute(select(pushes).where(pushes.c.plan_key == plan_key)).first()
                    if row is None:
                        connection.execute(insert(pushes).values(
                            plan_key=plan_key, plan_ref=plan_ref[:500], state="running", owner=owner,
                            heartbeat_at=now, started_at=now, runs=1))
                        return None
                    if row.state == "running" and row.owner != owner and row.heartbeat_at and \
                            row.heartbeat_at >= cutoff and owner_alive(row.owner):
                        return dict(row._mapping)
                    condition = [pushes.c.plan_key == plan_key,
                                 pushes.c.owner.is_(None) if row.owner is None else pushes.c.owner == row.owner,
                                 pushes.c.heartbeat_at.is_(None) if row.heartbeat_at is None
                                 else pushes.c.heartbeat_at == row.heartbeat_at]
                    taken = connection.execute(update(pushes).where(*condition).values(
                        state="running", owner=owner, heartbeat_at=now, started_at=now, finished_at=None,
                        runs=pushes.c.runs + 1, plan_ref=plan_ref[:500]))
                    if taken.rowcount == 1:
                        return None
            except IntegrityError:  # another pusher inserted the row first: look again
                continue
        return self.push_state(plan_key) or {"state": "running", "owner": "?"}

    def heartbeat(self, plan_key: str, owner: str) -> None:
        """The pusher is alive (while it only asks about pending orders, nothing else says so)."""
        with self.engine.begin() as connection:
            connection.execute(update(pushes).where(pushes.c.plan_key == plan_key, pushes.c.owner == owner)
                               .values(heartbeat_at=utcnow()))

    def release(self, plan_key: str, owner: str, state: str, result: dict) -> None:
        with self.engine.begin() as connection:
            connection.execute(update(pushes).where(pushes.c.plan_key == plan_key, pushes.c.owner == owner)
                               .values(state=state, owner=None, finished_at=utcnow(), heartbeat_at=utcnow(),
                                       result=dumps(result)))

    def push_state(self, plan_key: str) -> dict | None:
        with self.engine.connect() as connection:
            row = connection.execute(select(pushes).where(pushes.c.plan_key == plan_key)).first()
        if row is None:
            return None
        state = dict(row._mapping)
        state["result"] = json.loads(state["result"]) if state["result"] else None
        return state

    # ---- imports (API) --------------------------------------------------------------------------
    def record_import(self, *, source_region_id: str | None, region_id: str | None, source: str,
                      registry: str | None, exported_at: str | None, export_sha256: str | None, changed: bool,
                      report: dict) -> None:
        with self.engine.begin() as connection:
            connection.execute(insert(imports).values(
                source_region_id=source_region_id, region_id=region_id, source=source[:1000], registry=registry,
                exported_at=exported_at, export_sha256=export_sha256, changed=changed, report=dumps(report),
                at=utcnow()))


def status_counts(rows: list[dict]) -> dict[str, dict]:
    counts = {state: {"orders": 0, "amount_rub": 0} for state in STATES}
    for row in rows:
        counts[row["status"]]["orders"] += 1
        counts[row["status"]]["amount_rub"] += int(row["amount_rub"])
    return counts


__all__ = ["FINAL", "IN_FLIGHT", "Ledger", "STATES", "TO_PROCESS", "ensure_schema", "events", "imports",
           "make_engine", "orders", "owner_alive", "owner_tag", "pushes", "status_counts", "utcnow"]
