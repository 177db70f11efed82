"""`marshrut keys ...`: API keys as records in the database the server uses (MARSHRUT_DATABASE_URL).

A thin shell over marshrut.api.keys: `create` prints the new key once (only its hash is stored),
`list` shows the keys without them, `revoke` refuses a key from the server's next request on.
Every change is written to the audit (key id `cli`).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from marshrut.engine.problems import InputError

keys_app = typer.Typer(help="Ключи API: создать, перечислить, отозвать (API keys: create, list, revoke). "
                            "Database: MARSHRUT_DATABASE_URL.", no_args_is_help=True)
console = Console()
errors = Console(stderr=True)


def _sessions():
    from marshrut.api.db import create_schema, make_engine, session_factory
    from marshrut.api.settings import Settings

    engine = make_engine(Settings().database_url)
    create_schema(engine)
    return engine, session_factory(engine)


def _when(value: dt.datetime | None, timespec: str = "seconds") -> str | None:
    return None if value is None else value.isoformat(timespec=timespec) + "Z"


@keys_app.command("create")
def create(
    tenant: Annotated[str, typer.Option("--tenant", help="The tenant the key belongs to (e.g. a regional institute)")],
    role: Annotated[str, typer.Option("--role", help="viewer (reads), planner (also changes), admin (also keys, "
                                                     "audit, every tenant)")],
    expires_days: Annotated[Optional[float], typer.Option(
        "--expires-days", help="Days until it expires; decimals allowed (0.001 ≈ 90 s), 0: already expired")] = None,
    as_json: Annotated[bool, typer.Option("--json", help='Print {"id", "key", "tenant", "role"} as JSON')] = False,
) -> None:
    """Make a key and print it once: it cannot be shown again."""
    from marshrut.api.keys import create_key

    engine, sessions = _sessions()
    try:
        made = create_key(sessions, tenant, role, expires_days, by="cli", by_role=None)
    except InputError as error:
        for problem in error.problems:
            errors.print(f"{error.title}: {problem}", markup=False, highlight=False)
        raise typer.Exit(2) from None
    finally:
        engine.dispose()
    if as_json:
        typer.echo(json.dumps({"id": made["id"], "key": made["key"], "tenant": made["tenant"], "role": made["role"],
                               "expires_at": _when(made["expires_at"], "milliseconds")}))
        return
    typer.echo(made["key"])
    errors.print(f"key {made['id']}: tenant {made['tenant']}, role {made['role']}, expires "
                 f"{_when(made['expires_at']) or 'never'} — the key is shown only now", markup=False, highlight=False)


@keys_app.command("list")
def list_command(
    tenant: Annotated[Optional[str], typer.Option("--tenant", help="Only this tenant's keys")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines")] = False,
) -> None:
    """The keys (id, tenant, role, state), never the keys themselves."""
    from marshrut.api.keys import list_keys

    engine, sessions = _sessions()
    try:
        rows = list_keys(sessions, tenant)
    finally:
        engine.dispose()
    if as_json:
        for row in rows:
            typer.echo(json.dumps({k: _when(v, "milliseconds") if isinstance(v, dt.datetime) else v
                                   for k, v in row.items()}))
        return
    table = Table(title_justify="left")
    for column in ("id", "tenant", "role", "state", "created", "expires", "revoked"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row["id"], row["tenant"], row["role"], row["state"], _when(row["created_at"]),
                      _when(row["expires_at"]) or "", _when(row["revoked_at"]) or "")
    console.print(table)


@keys_app.command("revoke")
def revoke(key_id: Annotated[str, typer.Argument(help="The key's id (from `marshrut keys list`)")]) -> None:
    """Revoke a key: a running server refuses it from its next request on."""
    from marshrut.api.keys import revoke_key

    engine, sessions = _sessions()
    try:
        row = revoke_key(sessions, key_id, by="cli", by_role=None)
    finally:
        engine.dispose()
    if row is None:
        errors.print(f"no key with id {key_id[:40]!r}", markup=False, highlight=False)
        raise typer.Exit(2)
    typer.echo(f"key {row['id']} revoked (tenant {row['tenant']}, role {row['role']})")
