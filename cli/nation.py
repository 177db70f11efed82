"""`marshrut plan NATION`: a thin shell over engine.nation_plan.plan_nation, with progress per region."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import typer
from rich.table import Table

from marshrut.engine.problems import InputError

from .cli import console, errors, fail, number, rub


def validate_nation_command(bundle: Path) -> None:
    from marshrut.engine.nation import load_nation

    started = time.perf_counter()
    try:
        nation = load_nation(bundle)
    except InputError as error:
        fail(error)
    counts = nation.counts()
    console.print(f"[green]Набор данных страны корректен[/green] (nation is valid, read in "
                  f"{time.perf_counter() - started:.1f} s): {nation.name}, регионов {counts['regions']}, педагогов "
                  f"{number(counts['teachers'], 0)}, федеральных сессий {counts['federal_sessions']}, мест "
                  f"{number(counts['federal_seats'], 0)}, федеральный бюджет {rub(counts['federal_budget_rub'])}.")


def plan_nation_command(bundle: Path, out: Path, params_file: Path | None, time_limit: float | None, quiet: bool,
                        cluster: str | None) -> None:
    from marshrut.engine.nation import load_nation, load_nation_params
    from marshrut.engine.nation_plan import plan_nation

    started = time.perf_counter()
    try:
        nation = load_nation(bundle)
        params = load_nation_params(params_file, nation.region_ids)
        if time_limit is not None:
            params = replace(params, params=params.params.model_copy(update={"time_limit_s": time_limit}))
    except InputError as error:
        fail(error)
    counts = nation.counts()
    console.print(f"Страна «{nation.name}»: регионов {counts['regions']}, педагогов {number(counts['teachers'], 0)}, "
                  f"федеральных сессий {counts['federal_sessions']} (мест {number(counts['federal_seats'], 0)}), "
                  f"федеральный бюджет {rub(counts['federal_budget_rub'])}; прочитана за "
                  f"{time.perf_counter() - started:.1f} с. Лимит {params.params.time_limit_s:g} с.")
    try:
        import ray  # noqa: F401

        distributed = True
    except ImportError:
        distributed = False
        if cluster:
            errors.print("Для --cluster нужен Ray: pip install \"marshrut[distributed]\"")
            raise typer.Exit(2) from None
        console.print("Ray не установлен: регионы решаются в этом процессе (pip install \"marshrut[distributed]\" "
                      "для кластера) / Ray is not installed: regions are solved in this process.")
    where = f"кластер Ray {cluster}" if cluster else "локальный кластер Ray" if distributed else "этот процесс"
    with console.status(f"Планирование страны ({where})…", spinner="dots") as status:
        def show(event) -> None:
            if quiet:
                return
            bound = "—" if event.bound is None else number(event.bound, 2)
            objective = "—" if event.objective is None else number(event.objective, 2)
            who = f"регион {event.region_id}: " if event.region_id else ""
            status.update(f"[{event.elapsed:5.1f} с] раунд {event.round + 1}, {who}{event.phase}; "
                          f"цель {objective}, граница {bound}")
            if event.phase == "round":
                console.print(f"[{event.elapsed:5.1f} с] раунд {event.round}: цель {objective}, граница {bound}")
            elif event.phase == "allotment":
                console.print(f"[{event.elapsed:5.1f} с] регионы в своих долях федеральных мест (allotment round): "
                              f"цель {objective}, граница {bound}")
        try:
            summary = plan_nation(nation, params, out, address=cluster, distributed=distributed,
                                  deadline=started + params.params.time_limit_s, on_progress=show)
        except InputError as error:
            fail(error)
    table = Table(show_header=False, title="План страны / nation's plan", title_justify="left")
    table.add_column()
    table.add_column(justify="right")
    budget = summary["federal"]["budget"]
    for label, value in [
        ("Статус / status", summary["status"]),
        ("Цель / objective", number(summary["objective"], 3)),
        ("Граница / bound", number(summary["bound"], 3)),
        ("Разрыв / gap", f"{number(100 * summary['gap'], 3)} %"),
        ("Закрыто потребности / need covered", f"{number(summary['need_covered'], 1)} из "
                                                f"{number(summary['need_total'], 1)}"),
        ("Педагогов с маршрутом / teachers reached", number(summary["teachers_reached"], 0)),
        ("Федеральный бюджет / federal budget", f"{rub(budget['used_rub'])} из {rub(budget['amount_rub'])}"),
        ("Время / seconds", f"{time.perf_counter() - started:.1f}"),
    ]:
        table.add_row(label, str(value))
    console.print(table)
    console.print(f"Файлы плана / plan files: {Path(out).resolve()} (regions/<region_id>/ — план каждого региона)")
