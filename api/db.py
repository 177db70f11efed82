"""The database: regions (with the uploaded bundle), plans (params, status, progress) and plan files.

SQLite by default, PostgreSQL by URL, through SQLAlchemy 2. JSON is stored as ASCII text
(`json.dumps` escapes every control character and lone surrogate), so no user string can break
a driver. Diagnostics scores live only inside the stored bundle and the plan files: they are
never copied into a column of their own and never logged.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Iterator

from sqlalchemy import DateTime, ForeignKey, Integer, LargeBinary, String, Text, event, inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.schema import CreateTable

from marshrut.engine.database import make_engine as _make_engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, deferred, mapped_column, sessionmaker

ACTIVE = ("queued", "running")
FINISHED = ("done", "failed", "cancelled")
STATUSES = ACTIVE + FINISHED


def utcnow() -> dt.datetime:
    """Naive UTC: SQLite keeps no time zone, so both databases store the same thing."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def new_id() -> str:
    return uuid.uuid4().hex


def dumps(value) -> str:
    return json.dumps(value, ensure_ascii=True, allow_nan=False, separators=(",", ":"))


def loads(text: str | None):
    return None if text is None else json.loads(text)


class Base(DeclarativeBase):
    pass


TENANT = String(100)


class StoredBundle:
    """An uploaded bundle, kept whole with what the API reads of it without parsing it again."""

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    # the owner (a regional institute, say): only its keys (and admins) see the bundle and its plans
    tenant: Mapped[str] = mapped_column(TENANT, index=True, default="default", server_default="default")
    name: Mapped[str] = mapped_column(String(500))
    filename: Mapped[str] = mapped_column(String(255))
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    counts: Mapped[str] = mapped_column(Text)  # JSON: the data's counts()
    # JSON: ids a plan request may name (teachers, mentors, sessions), to check pinned/forbidden early
    ids: Mapped[str] = mapped_column(Text, deferred=True)
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Region(StoredBundle, Base):
    __tablename__ = "regions"


class Nation(StoredBundle, Base):
    """A nation bundle (SPEC §7: regions tied by federal resources), uploaded as a .zip: `counts` has
    its regions' ids and names too, `ids` holds a region's ids under its region id."""

    __tablename__ = "nations"


class Plan(Base):
    __tablename__ = "plans"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    # a region's job names its region; a nation's plan (kind `nation`) names its nation instead
    region_id: Mapped[str | None] = mapped_column(String(32), ForeignKey("regions.id", ondelete="CASCADE"),
                                                  index=True, nullable=True)
    nation_id: Mapped[str | None] = mapped_column(String(32), ForeignKey("nations.id", ondelete="CASCADE"),
                                                  index=True, nullable=True)
    tenant: Mapped[str] = mapped_column(TENANT, index=True, default="default", server_default="default")  # the region's
    # what the job is: a plan, a re-plan of another plan (`job` names it and the changes), a sweep
    kind: Mapped[str] = mapped_column(String(16), default="plan", server_default="plan")
    job: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON: what a re-plan or sweep needs beyond params
    params: Mapped[str] = mapped_column(Text)  # JSON, as validated (docs/parameters.md)
    status: Mapped[str] = mapped_column(String(16), index=True, default="queued")
    attempt: Mapped[int] = mapped_column(Integer, default=0)  # starts so far; guards every worker write
    owner: Mapped[str | None] = mapped_column(String(200), nullable=True)  # host:pid:token of the server solving it
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    progress: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON: elapsed, objective, bound, phase
    summary: Mapped[str | None] = deferred(mapped_column(Text, nullable=True))  # summary.json
    error: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON: InputError.as_dict() or a message


class PlanFile(Base):
    """assignments.csv, routes.csv, clusters.csv, summary.json, plan.xlsx of a finished plan."""

    __tablename__ = "plan_files"

    plan_id: Mapped[str] = mapped_column(String(32), ForeignKey("plans.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    content: Mapped[bytes] = mapped_column(LargeBinary)


class ApiKey(Base):
    """A key made by `marshrut keys create` or `POST /v1/keys`: only its SHA-256 is stored."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: uuid.uuid4().hex[:12])
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)  # hex SHA-256 of the key
    tenant: Mapped[str] = mapped_column(TENANT, index=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    created_by: Mapped[str | None] = mapped_column(String(100), nullable=True)  # a key id, `env:…` or `cli`


class AuditRecord(Base):
    """Who did what to which object, from where, and how it ended. Append-only (triggers refuse
    UPDATE and DELETE); ids and counts only, never scores."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    tenant: Mapped[str] = mapped_column(TENANT, index=True)  # whose object (or, for a refusal, the key's tenant)
    key_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    role: Mapped[str | None] = mapped_column(String(16), nullable=True)
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str | None] = mapped_column(String(32), nullable=True)
    object_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    address: Mapped[str | None] = mapped_column(String(100), nullable=True)
    outcome: Mapped[str] = mapped_column(String(32))  # ok | denied | expired | revoked | an HTTP status
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON: counts, file names, ids


_APPEND_ONLY = {
    "sqlite": ["CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log "
               "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
               "CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log "
               "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"],
    "postgresql": ["CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
                   "$$ BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$",
                   "DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log",
                   "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
                   "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"],
}


def make_engine(url: str) -> Engine:
    engine = _make_engine(url, pool_size=10, max_overflow=20)
    if engine.dialect.name == "sqlite":
        @event.listens_for(engine, "connect")
        def _secure_delete(connection, _record) -> None:
            # deleted rows (bundles, plan files) are overwritten in the file, not left in free pages
            cursor = connection.cursor()
            cursor.execute("PRAGMA secure_delete=ON")
            cursor.close()
    return engine


def _add_missing_columns(engine: Engine) -> None:
    """Databases made by an older version get the new columns (tenant, kind, job), with their defaults."""
    existing = inspect(engine)
    for table in Base.metadata.sorted_tables:
        if not existing.has_table(table.name):
            continue
        have = {column["name"] for column in existing.get_columns(table.name)}
        for column in table.columns:
            if column.name in have:
                continue
            kind = column.type.compile(dialect=engine.dialect)
            default = f" DEFAULT '{column.server_default.arg}' NOT NULL" if column.server_default is not None else ""
            with engine.begin() as connection:
                connection.execute(text(f'ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}{default}'))
            for index in table.indexes:
                if [c.name for c in index.columns] == [column.name]:
                    index.create(engine, checkfirst=True)


def _allow_plans_without_region(engine: Engine) -> None:
    """Databases made before nations have plans.region_id NOT NULL; a nation's plan has none."""
    region = next((c for c in inspect(engine).get_columns("plans") if c["name"] == "region_id"), None)
    if region is None or region["nullable"]:
        return
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(text("ALTER TABLE plans ALTER COLUMN region_id DROP NOT NULL"))
        return
    # SQLite cannot drop a constraint: the table is rebuilt as the model says, rows copied (the
    # documented procedure: foreign keys off, one transaction, then the indexes made again)
    table = Base.metadata.tables["plans"]
    columns = ", ".join(c.name for c in table.columns)
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")  # only outside a transaction
        connection.commit()
        try:
            connection.exec_driver_sql("DROP TABLE IF EXISTS plans_rebuilt")
            create = str(CreateTable(table).compile(dialect=engine.dialect))
            connection.exec_driver_sql(create.replace("CREATE TABLE plans", "CREATE TABLE plans_rebuilt", 1))
            connection.exec_driver_sql(f"INSERT INTO plans_rebuilt ({columns}) SELECT {columns} FROM plans")
            connection.exec_driver_sql("DROP TABLE plans")
            connection.exec_driver_sql("ALTER TABLE plans_rebuilt RENAME TO plans")
            for index in table.indexes:
                index.create(connection, checkfirst=True)
            connection.commit()
        except Exception:
            connection.rollback()
            raise
        finally:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()


def _create(engine: Engine) -> None:
    Base.metadata.create_all(engine)
    _add_missing_columns(engine)
    _allow_plans_without_region(engine)
    with engine.begin() as connection:
        for statement in _APPEND_ONLY.get(engine.dialect.name, []):
            connection.execute(text(statement))


def create_schema(engine: Engine) -> None:
    """Creates missing tables and columns; several server processes starting at once may race, so retry."""
    for attempt in range(5):
        try:
            _create(engine)
            return
        except DBAPIError:
            if attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def sessions(factory: sessionmaker[Session]) -> Iterator[Session]:
    with factory() as session:
        yield session


def finished_plan(url: str, plan_id: str) -> tuple[bytes, bytes, str]:
    """A finished plan's `assignments.csv`, its region's stored bundle and that bundle's file name.

    For tools that work on the API's plans from outside the server (`marshrut registry push ID`).
    """
    from sqlalchemy import select

    from marshrut.engine.problems import InputError, Problem

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            row = connection.execute(select(Plan.status, Region.content, Region.filename)
                                     .join(Region, Region.id == Plan.region_id).where(Plan.id == plan_id)).first()
            if row is None:
                raise InputError([Problem(plan_id, "плана с таким id нет в базе", "not_found")], title="План не найден")
            if row.status != "done":
                raise InputError([Problem(plan_id, f"план ещё не готов (статус {row.status})", "not_ready")],
                                 title="План не готов")
            content = connection.execute(select(PlanFile.content).where(
                PlanFile.plan_id == plan_id, PlanFile.name == "assignments.csv")).scalar_one()
            return bytes(content), bytes(row.content), row.filename
    finally:
        engine.dispose()
