"""SQLAlchemy engines for marshrut's stores (the API's plans, the registry ledger).

SQLite by default, PostgreSQL by URL; `postgresql://` means psycopg 3 (psycopg2 is not a
dependency). A failed statement's values (bundle bytes, ids) never reach a log.
"""

from __future__ import annotations

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine


def normalise_url(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def make_engine(url: str, *, foreign_keys: bool = True, **pool) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection, _record) -> None:
            cursor = connection.cursor()
            # WAL: readers never wait for the writer; several server processes may share the file
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")  # a commit survives a crash of the process
            cursor.execute("PRAGMA busy_timeout=30000")
            if foreign_keys:
                cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, hide_parameters=True, **pool)
