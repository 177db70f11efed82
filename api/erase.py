"""Deleting a region deletes: its bundle, its plans and their files, the registry's records of them,
and whatever a router keeps of them in memory or on disk (each registers an eraser here).

SQLite runs with `secure_delete` (see db.make_engine), so the deleted bytes are overwritten in the
database file too; PostgreSQL frees them at its next vacuum (docs/security.md).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import delete, inspect, select, update
from sqlalchemy.orm import Session

from .db import ACTIVE, Nation, Plan, PlanFile, Region, utcnow

# (region_id, plan_ids) -> what it removed, e.g. {"cached_regions": 1}; called after the commit
Eraser = Callable[[str, list[str]], dict]
_erasers: list[Eraser] = []


def register_eraser(eraser: Eraser) -> Eraser:
    """For a router that keeps something of a region outside the tables (a cache, files on disk)."""
    _erasers.append(eraser)
    return eraser


def _registry_rows(session: Session, region_id: str, plan_ids: list[str]) -> int:
    from marshrut.engine.registry.ledger import events, imports, orders, pushes

    names = set(inspect(session.get_bind()).get_table_names())
    removed = 0
    for table in (orders, events, pushes):
        if table.name in names and plan_ids:
            removed += session.execute(delete(table).where(table.c.plan_key.in_(plan_ids))).rowcount or 0
    if imports.name in names and region_id:
        removed += session.execute(delete(imports).where(
            (imports.c.region_id == region_id) | (imports.c.source_region_id == region_id))).rowcount or 0
    return removed


def _checkpoint(session: Session) -> None:
    """SQLite: the write-ahead log still holds the pages as they were before the delete; copy it into
    the database file (where secure_delete has zeroed them) and truncate it. Best effort: a reader
    holding an old snapshot leaves the log until the next checkpoint."""
    bind = session.get_bind()
    if bind.dialect.name == "sqlite":
        with bind.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def _erase_with_plans(app, session: Session, column, owner_id: str, table, region_id: str = "") -> dict:
    """Removes a region or nation (`table`, `owner_id`) and every plan whose `column` names it,
    in one transaction; returns the counts."""
    # cancel first: a dispatcher that sees the plan cancelled stops its solver and writes nothing more
    session.execute(update(Plan).where(column == owner_id, Plan.status.in_(ACTIVE))
                    .values(status="cancelled", finished_at=utcnow(), owner=None))
    plan_ids = list(session.scalars(select(Plan.id).where(column == owner_id)))
    files = session.execute(delete(PlanFile).where(PlanFile.plan_id.in_(plan_ids))).rowcount if plan_ids else 0
    registry = _registry_rows(session, region_id, plan_ids)
    session.execute(delete(Plan).where(column == owner_id))
    session.execute(delete(table).where(table.id == owner_id))
    session.commit()
    app.state.dispatcher.poke()
    erased = {"plans": len(plan_ids), "plan_files": files or 0, "registry_rows": registry}
    _checkpoint(session)
    for eraser in _erasers:
        for name, count in eraser(region_id, plan_ids).items():
            erased[name] = erased.get(name, 0) + count
    return erased


def erase_region(app, session: Session, region: Region) -> dict:
    """Removes the region and everything made from it, in one transaction; returns the counts."""
    return _erase_with_plans(app, session, Plan.region_id, region.id, Region, region_id=region.id)


def erase_nation(app, session: Session, nation: Nation) -> dict:
    """Removes the nation, its plans and their files, in one transaction; returns the counts."""
    return _erase_with_plans(app, session, Plan.nation_id, nation.id, Nation)


def erase_plan(session: Session, plan: Plan) -> dict:
    """Removes a finished plan, its files and the registry's records of it."""
    files = session.execute(delete(PlanFile).where(PlanFile.plan_id == plan.id)).rowcount or 0
    registry = _registry_rows(session, "", [plan.id])
    session.execute(delete(Plan).where(Plan.id == plan.id))
    session.commit()
    erased = {"plan_files": files, "registry_rows": registry}
    _checkpoint(session)
    for eraser in _erasers:
        for name, count in eraser("", [plan.id]).items():
            erased[name] = erased.get(name, 0) + count
    return erased
