"""`marshrut registry ...`: import from a registry, push a plan's enrolment orders, reconcile.

Part of the `marshrut` command (`marshrut registry ...`); also runnable alone:
`python -m marshrut.registry push PLAN --bundle DIR --registry URL`.

Exit status: 0 done; 1 the push stopped (the registry refused a request or is unavailable: run it
again to resume) or the plan is already being pushed; 2 bad input (export, mapping, bundle, plan);
3 every order was sent but some are still pending in the registry (run the push again later: it
asks the registry about them).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from marshrut.engine.problems import InputError, Problem

registry_app = typer.Typer(
    help="Реестр персонифицированного финансирования ДПО педагогов: импорт каталога программ и сертификатов, "
         "отправка заявок на зачисление, сверка.\n\nThe personalised-funding registry: import programs and "
         "vouchers, push a plan's enrolment orders, reconcile.",
    no_args_is_help=True,
)
console = Console()
errors = Console(stderr=True)

DEFAULT_DATABASE = "sqlite:///./marshrut.sqlite"
PLAN_ID = re.compile(r"[0-9a-f]{32}")
DIFFERENCES_SHOWN = 200  # field differences printed by `status --check` (all of them with --json)

RegistryOption = Annotated[Optional[str], typer.Option(
    "--registry", envvar="MARSHRUT_REGISTRY_URL", help="Base URL of the registry API (env MARSHRUT_REGISTRY_URL)")]
KeyOption = Annotated[Optional[str], typer.Option(
    "--api-key", envvar="MARSHRUT_REGISTRY_API_KEY", show_default=False,
    help="The registry's API key, sent as Authorization: Bearer (env MARSHRUT_REGISTRY_API_KEY)")]
DatabaseOption = Annotated[str, typer.Option(
    "--database", envvar="MARSHRUT_DATABASE_URL",
    help="The ledger's database (the API's): sqlite:///path or postgresql+psycopg://… (env MARSHRUT_DATABASE_URL)")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the report as JSON")]


def _fail(error: InputError) -> None:
    from .cli import fail  # not at the top: the main CLI imports this module

    fail(error)


def _rub(value: int) -> str:
    return f"{value:,.0f}".replace(",", "\u202f") + " ₽"


# ------------------------------------------------------------------------------------------------
# import
# ------------------------------------------------------------------------------------------------

@registry_app.command("import")
def import_command(
    source: Annotated[str, typer.Option("--from", help="Registry export: .json, a folder or .zip of CSV files, "
                                                       "or an http(s) URL answering either")],
    bundle: Annotated[Path, typer.Option("--bundle", help="Bundle folder to merge into")],
    mapping: Annotated[Optional[Path], typer.Option(
        "--mapping", help="Competency mapping: CSV registry_code,competency_id[,weight] or JSON; without it, "
                          "codes equal to the bundle's competency ids map to themselves")] = None,
    municipalities: Annotated[Optional[Path], typer.Option(
        "--municipalities", help="Municipality mapping: CSV registry_code,municipality_id")] = None,
    keep_withdrawn: Annotated[bool, typer.Option(
        "--keep-withdrawn", help="Keep registry programs missing from this export (a partial export)")] = False,
    allow_older: Annotated[bool, typer.Option(
        "--allow-older", help="Import an export older than the last one imported")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report the difference, write nothing")] = False,
    api_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Merge a registry export into a bundle: programs, sessions, competencies, voucher balances."""
    from marshrut.engine.registry.importer import import_export, read_export, read_mapping

    try:
        loaded = read_export(source, api_key=api_key)
        table = read_mapping(mapping, bundle, municipalities)
        report = import_export(bundle, loaded, table, keep_withdrawn=keep_withdrawn, dry_run=dry_run,
                               allow_older=allow_older)
    except InputError as error:
        _fail(error)
        return
    if as_json:
        console.print_json(report.model_dump_json())
        return
    verb = "изменилось бы" if dry_run else "изменено"
    title = (f"Импорт из реестра «{report.registry or report.source}» ({report.exported_at or 'без даты'}): "
             + (f"{verb} файлов {len([f for f, d in report.diff.items() if d.added or d.removed or d.changed])}"
                if report.changed else "изменений нет (no changes)"))
    table_ = Table(title=title, title_justify="left")
    for column in ("файл / file", "добавлено / added", "удалено / removed", "изменено / changed"):
        table_.add_column(column, justify="left" if column.startswith("файл") else "right")
    for file, diff in report.diff.items():
        table_.add_row(file, str(diff.added), str(diff.removed), str(diff.changed))
    console.print(table_)
    counts = report.counts
    console.print(f"В выгрузке: программ {counts['programs']}, сессий {counts['sessions']}, сертификатов "
                  f"{counts['vouchers']}. В наборе: программ реестра {counts['bundle_registry_programs']}, сессий "
                  f"{counts['bundle_program_sessions']}, педагогов с сертификатом {counts['teachers_with_certificate']}"
                  f" из {counts['bundle_teachers']}. За {report.seconds:.1f} с.")
    for note in report.notes:
        console.print(f"  • {note['message']}" + (f": {note['value']}" if note.get("value") else ""),
                      markup=False, highlight=False)
    if report.notes_total > len(report.notes):
        console.print(f"  … и ещё {report.notes_total - len(report.notes)}")


# ------------------------------------------------------------------------------------------------
# the plan: a folder, or a plan of the API's database
# ------------------------------------------------------------------------------------------------

def load_plan(plan: str, bundle: Path | None, database: str, *, need_bundle: bool = True):
    """(PlanOrders or None, plan key): a plan folder (with --bundle) or an API plan id (its region
    comes from the database)."""
    from marshrut.engine.registry.ledger import Ledger
    from marshrut.engine.registry.orders import build_orders, bundle_tables, parse_assignments, read_plan_folder

    path = Path(plan)
    if path.is_dir():
        with Ledger(database) as ledger:  # a plan already pushed under the legacy key keeps it
            plan_key, assignments = read_plan_folder(path, ledger)
        if not need_bundle:
            return None, plan_key
        if bundle is None:
            raise InputError([Problem("--bundle", "для папки плана нужен набор данных, по которому он составлен "
                                                  "(--bundle DIR)", "missing_value")], title="Не хватает параметра")
        return build_orders(plan_key, str(path.resolve()), assignments, bundle_tables(bundle)), plan_key
    if PLAN_ID.fullmatch(plan):
        if not need_bundle:
            return None, plan
        from marshrut.api.db import finished_plan

        content, region, filename = finished_plan(database, plan)
        tables = bundle_tables(bundle) if bundle is not None else bundle_tables(content=region, filename=filename)
        return build_orders(plan, f"api:{plan}", parse_assignments(content), tables), plan
    if plan.startswith("plan-") and not need_bundle:
        return None, plan
    raise InputError([Problem(plan, "нет такой папки плана (и это не id плана из API)", "not_found")],
                     title="План не найден")


# ------------------------------------------------------------------------------------------------
# push and status
# ------------------------------------------------------------------------------------------------

@registry_app.command("push")
def push_command(
    plan: Annotated[str, typer.Argument(help="Plan folder (from `marshrut plan --out`) or a plan id of the API")],
    bundle: Annotated[Optional[Path], typer.Option("--bundle", help="The bundle the plan was made on (after "
                                                                    "`registry import`); for an API plan, its "
                                                                    "region is used")] = None,
    registry: RegistryOption = None,
    api_key: KeyOption = None,
    database: DatabaseOption = DEFAULT_DATABASE,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per request")] = 10.0,
    max_attempts: Annotated[int, typer.Option("--max-attempts", min=1, help="Attempts per order before the push "
                                                                            "stops as unavailable")] = 8,
    backoff: Annotated[float, typer.Option("--backoff", min=0.0, help="First retry delay, doubling")] = 0.5,
    wait_pending: Annotated[float, typer.Option(
        "--wait-pending", min=0.0, help="Seconds to keep asking the registry about pending orders before "
                                        "ending with exit status 3")] = 30.0,
    poll: Annotated[float, typer.Option("--poll", min=0.01, help="First pause between asks about pending "
                                                                 "orders, doubling")] = 1.0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress lines")] = False,
    as_json: JsonOption = False,
) -> None:
    """Send the plan's enrolment orders (one per program assignment); run again to resume. Exit status 3: all
    sent, some still pending in the registry (run again later: it asks about them)."""
    from marshrut.engine.registry.client import PushOptions, plan_status, push_orders
    from marshrut.engine.registry.ledger import Ledger

    if not registry:
        _fail(InputError([Problem("--registry", "укажите адрес реестра (--registry или MARSHRUT_REGISTRY_URL)",
                                  "missing_value")], title="Не хватает параметра"))
    try:
        orders, plan_key = load_plan(plan, bundle, database)
    except InputError as error:
        _fail(error)
        return

    def progress(event: dict) -> None:
        if not quiet and not as_json:
            console.print(f"  … обработано заявок {event['processed']} из {event['queued']} "
                          f"(запросов {event['requests']})", highlight=False)

    with Ledger(database) as ledger:
        result = push_orders(ledger, registry, orders, PushOptions(
            api_key=api_key, timeout_s=timeout, max_attempts=max_attempts, backoff_s=backoff,
            pending_wait_s=wait_pending, poll_s=poll), on_progress=progress)
        report = plan_status(ledger, plan_key)
    if as_json:
        console.print_json(json.dumps({"push": result.model_dump(), "status": report.model_dump(mode="json")}))
    else:
        _print_status(report)
        if result.outcome == "completed":
            console.print(f"[green]Отправка завершена[/green] (push completed): запросов {result.requests}, "
                          f"повторов {result.retries}, {result.seconds:.1f} с.")
        elif result.outcome == "pending":
            errors.print(f"[yellow]Заявки отправлены, но реестр ещё не решил по {result.pending}[/yellow] "
                         f"(push pending: {result.pending} orders undecided). {result.reason}", highlight=False)
        else:
            errors.print(f"[red]Отправка остановлена[/red] (push {result.outcome}): {result.reason}\n"
                         "Устраните причину и запустите команду снова: отправка продолжится с места остановки.",
                         highlight=False)
    if result.outcome == "pending":
        raise typer.Exit(3)
    if result.outcome != "completed":
        raise typer.Exit(1)


@registry_app.command("status")
def status_command(
    plan: Annotated[str, typer.Argument(help="Plan folder, API plan id or plan key")],
    database: DatabaseOption = DEFAULT_DATABASE,
    check: Annotated[bool, typer.Option("--check", help="Also compare with the registry's own orders and adopt "
                                                        "its outcomes for orders whose answer was lost")] = False,
    registry: RegistryOption = None,
    api_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Reconcile: planned vs accepted vs rejected (with reasons) vs blocked vs still open."""
    from marshrut.engine.registry.client import plan_status, reconcile
    from marshrut.engine.registry.ledger import Ledger

    try:
        _, plan_key = load_plan(plan, None, database, need_bundle=False)
    except InputError as error:
        _fail(error)
        return
    if check and not registry:
        _fail(InputError([Problem("--registry", "для --check нужен адрес реестра", "missing_value")],
                         title="Не хватает параметра"))
    import httpx

    with Ledger(database) as ledger:
        try:
            differences = reconcile(ledger, plan_key, registry, api_key=api_key) if check else None
        except (httpx.HTTPError, ValueError) as error:
            errors.print(f"[red]Реестр не ответил на сверку[/red] (registry check failed): {type(error).__name__}: "
                         f"{error}", highlight=False)
            raise typer.Exit(1) from None
        report = plan_status(ledger, plan_key)
        report.reconciliation = differences
    if as_json:
        console.print_json(report.model_dump_json())
    else:
        _print_status(report)
        if differences is not None:
            verdict = ("[green]совпадает[/green]" if differences["matches"] else
                       f"[yellow]расхождений {len(differences['differences'])}, приняты из реестра[/yellow], теперь "
                       "совпадает (differences adopted)" if differences["agree"] else
                       "[yellow]есть расхождения[/yellow]")
            console.print(f"Сверка с реестром (registry check): {verdict}; заявок в реестре "
                          f"{differences['registry_orders']}, в журнале {differences['ledger_orders']}, принято "
                          f"состояние реестра: {len(differences['adopted'])}, нет в реестре: "
                          f"{len(differences['missing_in_registry'])}, неизвестны журналу: "
                          f"{len(differences['unknown_to_ledger'])}")
            shown = differences["differences"][:DIFFERENCES_SHOWN]
            for item in shown:
                console.print(f"  {item['order_id']} {item['field']}: журнал {item['ledger']!r} → реестр "
                              f"{item['registry']!r}", markup=False, highlight=False)
            if len(differences["differences"]) > len(shown):
                console.print(f"  … и ещё {len(differences['differences']) - len(shown)} (все: --json)")
    if report.planned["orders"] == 0:
        errors.print("В журнале нет заявок этого плана (nothing pushed yet)")


def _print_status(report) -> None:
    table = Table(title=f"Заявки плана {report.plan_key}", title_justify="left")
    table.add_column("")
    table.add_column("заявок / orders", justify="right")
    table.add_column("сумма / amount", justify="right")
    for label, part in (("запланировано / planned", report.planned), ("принято / accepted", report.accepted),
                        ("отклонено / rejected", report.rejected), ("отменено / cancelled", report.cancelled),
                        ("не отправлено / blocked", report.blocked), ("без ответа / open", report.open)):
        table.add_row(label, str(part["orders"]), _rub(part["amount_rub"]))
    console.print(table)
    for title, groups in (("Причины отказа реестра (rejected)", report.rejected_reasons),
                          ("Не отправлены (blocked)", report.blocked_reasons),
                          ("Ошибки запросов (errors)", report.error_reasons)):
        if groups:
            console.print(title + ":")
            for code, group in groups.items():
                console.print(f"  {code}: {group.orders} ({_rub(group.amount_rub)}), например: {group.example}",
                              markup=False, highlight=False)


if __name__ == "__main__":  # pragma: no cover
    registry_app()
