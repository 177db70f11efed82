"""The `marshrut` command line: validate a region, plan it, generate sample regions."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, NoReturn, Optional

import typer
from rich.console import Console
from rich.table import Table

from marshrut.engine.problems import InputError
from .keys import keys_app
from .registry import registry_app
from .documents import register as _register_documents
from .whatif import register as _register_whatif

app = typer.Typer(
    name="marshrut",
    help="marshrut (маршрут): индивидуальные образовательные маршруты педагогов — наставники, стажировки и "
         "программы ДПО в пределах мест, расписаний, дорог и бюджетов, с доказанной оценкой оптимальности.\n\n"
         "Individual development routes for teachers, planned optimally within capacities, dates, travel "
         "and budgets.\n\nДокументация / documentation: docs/README.md in marshrut's repository (the bundle: "
         "docs/bundle.md, parameters: docs/parameters.md, plan files: docs/plan-files.md).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
datasets_app = typer.Typer(help="Sample regions: generate bundles from seeded presets.", no_args_is_help=True)
app.add_typer(datasets_app, name="datasets")
app.add_typer(registry_app, name="registry")
app.add_typer(keys_app, name="keys")
console = Console()
errors = Console(stderr=True)


def rub(value: float) -> str:
    """Roubles the Russian way: 1 234 567 ₽ (narrow no-break space between thousands)."""
    return f"{value:,.0f}".replace(",", "\u202f") + " ₽"


def number(value: float, digits: int = 1) -> str:
    return f"{value:,.{digits}f}".replace(",", "\u202f").replace(".", ",")


def print_problems(error: InputError) -> None:
    shown = error.problems[:200]
    if not errors.is_terminal:  # a log or a pipe: one plain line per problem, nothing folded
        errors.print(f"{error.title}: {error.total}", soft_wrap=True)
        for p in shown:
            errors.print(f"  {p}", soft_wrap=True, markup=False, highlight=False)
    else:
        _print_problem_table(error, shown)
    if error.total > len(shown):
        errors.print(f"… и ещё {error.total - len(shown)} (and {error.total - len(shown)} more)")


def fail(error: InputError) -> NoReturn:
    """Bad input ends a command one way: every problem listed, then exit status 2."""
    print_problems(error)
    raise typer.Exit(2) from None


def _print_problem_table(error: InputError, shown) -> None:
    table = Table(title=f"{error.title}: {error.total}", show_lines=False, title_justify="left")
    for column in ("файл / file", "строка / row", "столбец / column", "значение / value", "что не так / problem"):
        table.add_column(column, overflow="fold")
    for p in shown:
        table.add_row(p.file, "" if p.row is None else str(p.row), p.column or "", p.value or "", p.message)
    errors.print(table)


def _load(bundle: Path):
    from marshrut.engine.bundle import load_bundle

    started = time.perf_counter()
    region = load_bundle(bundle)
    return region, time.perf_counter() - started


@app.command()
def validate(bundle: Annotated[Path, typer.Argument(help="Folder of CSV files, .zip or .xlsx (docs/bundle.md)")]
             ) -> None:
    """Check a region bundle (or a nation) and list every problem (exit status 2 if there are any)."""
    from marshrut.engine.nation import is_nation

    if is_nation(bundle):
        from .nation import validate_nation_command

        validate_nation_command(bundle)
        return
    try:
        region, seconds = _load(bundle)
    except InputError as error:
        fail(error)
    counts = region.counts()
    console.print(f"[green]Набор данных корректен[/green] (bundle is valid, read in {seconds:.2f} s): "
                  f"{region.name}, педагогов {number(counts['teachers'], 0)}, школ {number(counts['schools'], 0)}, "
                  f"муниципалитетов {counts['municipalities']}, наставников {counts['mentors']}, "
                  f"сессий стажировок {counts['site_sessions']}, сессий программ {counts['program_sessions']}.")


@app.command()
def plan(
    bundle: Annotated[Path, typer.Argument(help="Folder of CSV files, .zip or .xlsx (docs/bundle.md)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the plan to (docs/plan-files.md)")],
    params: Annotated[Optional[Path], typer.Option("--params", help="JSON file of plan parameters "
                                                                    "(docs/parameters.md)")] = None,
    time_limit: Annotated[Optional[float], typer.Option(
        "--time-limit", help="Seconds for the whole command: reading, solving and writing the plan")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No live progress")] = False,
    cluster: Annotated[Optional[str], typer.Option(
        "--cluster", help="A nation only: the Ray cluster's address (host:port of its head); without it a local "
                          "cluster is started and stopped")] = None,
) -> None:
    """Plan routes for a region (or a nation: a folder with nation.json) and write the plan's files."""
    from marshrut.engine.nation import is_nation

    if is_nation(bundle):
        from .nation import plan_nation_command

        plan_nation_command(bundle, out, params, time_limit, quiet, cluster)
        return
    # The time limit is the planner's wall clock from here to the last file written (docs/parameters.md):
    # the clock starts now, and the route search loads (or compiles) beside the reading of the bundle.
    from marshrut.engine.deadline import Deadline, warm_up_in_background

    deadline = Deadline.since_process_start(60.0)  # its limit is set once the parameters are read
    warming = warm_up_in_background()
    from marshrut.engine.params import load_params
    from marshrut.engine.pipeline import plan_region
    from marshrut.engine.plan import write_plan

    try:
        parameters = load_params(params)
        if time_limit is not None:
            parameters = parameters.model_copy(update={"time_limit_s": time_limit})
        deadline.limit_s = parameters.time_limit_s
        region, load_seconds = _load(bundle)
        console.print(f"Регион «{region.name}»: педагогов {number(len(region.teachers), 0)}, "
                      f"прочитан за {load_seconds:.1f} с. Лимит времени {parameters.time_limit_s:g} с "
                      "(чтение, решение и запись плана).")
        if warming.is_alive():
            console.print("Поиск маршрутов компилируется: это делается один раз после установки, и это время "
                          "входит в лимит / the route search compiles once after installation, within the limit.")
        with console.status("Планирование…", spinner="dots") as status:
            def show(event) -> None:
                if quiet:
                    return
                bound = "—" if event.bound is None else number(event.bound, 2)
                status.update(f"[{event.elapsed:5.1f} с] {event.phase}: цель {number(event.objective, 2)}, "
                              f"граница {bound}")
            files = plan_region(region, parameters, on_progress=show, deadline=deadline)
        files.summary["bundle"] = str(bundle.resolve())  # lets `marshrut replan PLAN` find the region
        folder = write_plan(files, out)
    except InputError as error:
        fail(error)
    print_report(files.summary, folder)
    console.print(f"Время от запуска до записи плана / wall clock: {number(deadline.elapsed(), 1)} с "
                  f"(лимит {number(deadline.limit_s, 0)} с)")


def print_report(summary: dict, folder: Path) -> None:
    table = Table(show_header=False, title="План / plan", title_justify="left")
    table.add_column()
    table.add_column(justify="right")
    spending = summary["spending"]
    rows = [
        ("Статус / status", summary["status"]),
        ("Закрыто потребности / need covered",
         f"{number(summary['need_covered'], 1)} из {number(summary['need_total'], 1)} "
         f"({number(100 * summary['need_covered_share'], 1)} %)"),
        ("Педагогов с маршрутом / teachers reached",
         f"{number(summary['teachers_reached'], 0)} из {number(summary['teachers_with_need'], 0)} с дефицитами"),
        ("Назначения / assignments", ", ".join(f"{k}: {number(v, 0)}" for k, v in summary["assignments"].items())),
        ("Из сертификатов / vouchers", rub(spending["voucher_rub"])),
        ("Из бюджетов муниципалитетов / municipalities",
         f"{rub(spending['municipalities_rub'])} (бюджет региона {rub(spending['region_budget_rub'])})"),
        ("Целевая функция / objective", number(summary["objective"], 3)),
        ("Доказанная граница / proved bound", number(summary["bound"], 3)),
        ("Разрыв до оптимума / gap", f"{number(100 * summary['gap'], 2)} %"),
        ("Время решения / solve time", f"{number(summary['solve_seconds'], 1)} с"),
    ]
    for label, value in rows:
        table.add_row(label, str(value))
    console.print(table)
    console.print(f"Файлы плана / plan files: {folder.resolve()}")


@datasets_app.command("generate")
def datasets_generate(
    preset: Annotated[str, typer.Option("--preset", help="tomsk-school-44 | krymsky-district | altai-krai | "
                                                          "krasnoyarsk-krai | krasnodar-krai | russia (a nation, "
                                                          "docs/nation.md)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the bundle to")],
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same bytes)")] = 0,
    teachers: Annotated[Optional[int], typer.Option("--teachers", help="Rescale the preset to this many teachers",
                                                    min=1)] = None,
    scale: Annotated[float, typer.Option("--scale", help="russia only: share of Russia's 1.06 million teachers",
                                         min=0.0001, max=1.0)] = 0.02,
) -> None:
    """Generate a sample region bundle from a preset (or, with --preset russia, a nation of 85 regions)."""
    from marshrut.datasets.generator import PRESETS, generate_bundle

    if preset == "russia":
        from marshrut.datasets.nation import generate_nation

        started = time.perf_counter()
        path = generate_nation(out, scale=scale, seed=seed)
        console.print(f"Страна «russia» (масштаб {scale:g}, seed {seed}) записана в {Path(path).resolve()} "
                      f"за {time.perf_counter() - started:.1f} с")
        return

    if preset not in PRESETS:
        errors.print(f"Неизвестный пресет «{preset}». Есть: {', '.join(PRESETS)}")
        raise typer.Exit(2)
    started = time.perf_counter()
    path = generate_bundle(preset, out, seed=seed, teachers=teachers)
    console.print(f"Набор «{preset}» (seed {seed}) записан в {Path(path).resolve()} "
                  f"за {time.perf_counter() - started:.1f} с")


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to bind; off loopback, API keys are required")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option("--workers", help="uvicorn worker processes", min=1)] = 1,
) -> None:
    """Serve the planning API (docs at /docs). Database: MARSHRUT_DATABASE_URL (SQLite file by default)."""
    from marshrut.api.serve import serve as run_server

    try:
        run_server(host, port, workers)
    except ValueError as error:  # settings that cannot work, e.g. no API keys off loopback
        errors.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None


@app.command()
def bench(
    presets: Annotated[Optional[list[str]], typer.Option("--presets", help="Presets to compare on")] = None,
    sizes: Annotated[Optional[list[int]], typer.Option("--sizes", help="Teacher counts of the scaling run")] = None,
    time_limit: Annotated[float, typer.Option("--time-limit", help="Seconds per solver and bundle")] = 60.0,
    out: Annotated[Optional[Path], typer.Option("--out", help="Folder for results.csv, tables and plots")] = None,
    solvers: Annotated[Optional[list[str]], typer.Option("--solvers", help="marshrut, greedy, cpsat, mip, "
                                                                            "timefold")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="A smoke run of seconds")] = False,
) -> None:
    """Benchmark marshrut against the peers a planner would otherwise use; writes tables and plots."""
    from marshrut.benchmarks import run

    run.main(presets=tuple(presets) if presets else run.PRESETS, sizes=tuple(sizes or ()), time_limit=time_limit,
             out_dir=out or run.DEFAULT_OUT, solvers=solvers, quick=quick, log=console.print)


_register_whatif(app)
_register_documents(app)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
