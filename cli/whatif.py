"""CLI commands: explain, replan, fit, sweep. `register(app)` adds them to the `marshrut` app.

    marshrut explain PLAN --bundle BUNDLE                    # explain.csv, explain_totals.csv into PLAN
    marshrut replan PLAN --bundle BUNDLE --changes FILE [--out DIR] [--keep-bonus P] [--time-limit S]
    marshrut replan PLAN --from-xlsx plan.xlsx          # the planner's «закрепить» / «исключить» marks
    marshrut fit PLAN --bundle BUNDLE --teacher FILE [--top N]
    marshrut sweep BUNDLE --budget 0.5x..2x [--vouchers ..] [--seats ..] [--points N] [--out DIR]

A plan folder does not name its bundle unless summary.json has a `bundle` key; `--bundle` says it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from marshrut.engine.problems import InputError, Problem


def _cli():
    from . import cli  # the shared consoles and printers

    return cli


def _fail(error: InputError) -> None:
    _cli().fail(error)


def _bundle_of(plan_dir: Path, bundle: Optional[Path]) -> Path:
    if bundle is not None:
        return bundle
    summary = plan_dir / "summary.json"
    if summary.exists():
        named = json.loads(summary.read_text(encoding="utf-8")).get("bundle")
        if named:
            return Path(named)
    raise InputError([Problem("plan", "укажите набор данных плана: --bundle BUNDLE", "missing_bundle", None,
                              "--bundle")], title="Не указан набор данных (bundle)")


def _plan_folder(plan_dir: Path) -> None:
    if not (plan_dir / "assignments.csv").exists() or not (plan_dir / "summary.json").exists():
        raise InputError([Problem(str(plan_dir), "это не папка плана (нет assignments.csv или summary.json)",
                                  "not_a_plan")], title="Ошибка в папке плана")


def _params(plan_dir: Path, params_file: Optional[Path], time_limit: Optional[float] = None):
    from marshrut.engine.params import load_params
    from marshrut.engine.replan import previous_params

    params = load_params(params_file) if params_file else previous_params(plan_dir)
    if time_limit is not None:
        params = params.model_copy(update={"time_limit_s": time_limit})
    return params


PlanArg = Annotated[Path, typer.Argument(help="A plan folder written by `marshrut plan`")]
BundleOpt = Annotated[Optional[Path], typer.Option("--bundle", "-b", help="The plan's region bundle")]
ParamsOpt = Annotated[Optional[Path], typer.Option("--params", help="Parameters (default: the plan's, "
                                                                    "from summary.json)")]


def explain(plan_dir: PlanArg, bundle: BundleOpt = None, params: ParamsOpt = None) -> None:
    """Why this plan: explain.csv (each assignment's gains, each uncovered need's reason) and totals."""
    from marshrut.engine.bundle import load_bundle
    from marshrut.engine.explain import explain_assignments, write_explanation

    cli = _cli()
    try:
        _plan_folder(plan_dir)
        region = load_bundle(_bundle_of(plan_dir, bundle))
        parameters = _params(plan_dir, params)
        import pandas as pd

        assignments = pd.read_csv(plan_dir / "assignments.csv", dtype=str, keep_default_na=False)
        explanation = explain_assignments(region, parameters, assignments)
    except InputError as error:
        _fail(error)
    path = write_explanation(explanation, plan_dir)
    print_reasons(explanation.reason_counts())
    cli.console.print(f"Объяснение / explanation: {path.resolve()}")


def print_reasons(counts: dict) -> None:
    cli = _cli()
    table = Table(title="Почему потребность не закрыта / why needs are left", title_justify="left")
    for column in ("группа / group", "причина / reason", "потребностей / needs", "не закрыто / need left"):
        table.add_column(column, justify="right" if "need" in column else "left")
    for reason, row in sorted(counts.items(), key=lambda item: -item[1]["need_left"]):
        table.add_row(row["group"], reason, cli.number(row["needs"], 0), cli.number(row["need_left"], 2))
    cli.console.print(table)


def replan(
    plan_dir: PlanArg,
    changes: Annotated[Optional[Path], typer.Option("--changes", "-c", help="JSON file of changes (format: "
                                                                           "docs/changes.md in the repository)")]
    = None,
    bundle: BundleOpt = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Folder for the new plan "
                                                                    "(default: PLAN-replan)")] = None,
    keep_bonus: Annotated[float, typer.Option("--keep-bonus", help="Points an assignment must gain to move",
                                              min=0)] = 0.1,
    params: ParamsOpt = None,
    time_limit: Annotated[Optional[float], typer.Option("--time-limit", help="Seconds for the solve")] = None,
    from_xlsx: Annotated[Optional[Path], typer.Option("--from-xlsx", help="plan.xlsx with «закрепить» / «исключить» "
                                                                          "in the column «Решение» of «Маршруты»")]
    = None,
) -> None:
    """Re-plan after changes (mentor ill, session cancelled, budget cut, new teachers) with little disruption,
    or with the planner's decisions from plan.xlsx (pinned and forbidden assignments)."""
    from marshrut.engine.bundle import load_bundle
    from marshrut.engine.changes import Changes, load_changes
    from marshrut.engine.replan import read_assignments, replan as run_replan, write_replan

    cli = _cli()
    try:
        if changes is None and from_xlsx is None:
            raise InputError([Problem("replan", "укажите --changes FILE или --from-xlsx FILE", "missing_option",
                                      None, "--changes")], title="Нечего перепланировать")
        _plan_folder(plan_dir)
        region = load_bundle(_bundle_of(plan_dir, bundle))
        parameters = _params(plan_dir, params, time_limit)
        what = load_changes(changes) if changes is not None else Changes()
        if from_xlsx is not None:
            from marshrut.engine.decisions import read_decisions

            decisions = read_decisions(from_xlsx, region)
            parameters = decisions.apply(parameters)
            cli.console.print(f"Из книги: закрепить {len(decisions.pinned)}, исключить {len(decisions.forbidden)} "
                              f"(pinned, forbidden)")
        previous = read_assignments(plan_dir)
        with cli.console.status("Перепланирование…", spinner="dots"):
            from marshrut.engine.changes import apply_changes
            from marshrut.engine.plan import deficit_profiles

            # The changed region's deficit profiles shape the solver's neighbourhoods, as in `plan`.
            profiles = deficit_profiles(apply_changes(region, what), parameters, random_state=parameters.seed)
            replanned = run_replan(region, previous, what, parameters, keep_bonus=keep_bonus,
                                   profiles=profiles.labels)
    except InputError as error:
        _fail(error)
    folder = write_replan(replanned, out or plan_dir.with_name(plan_dir.name + "-replan"), profiles=profiles,
                          bundle=str(_bundle_of(plan_dir, bundle).resolve()))
    print_replan(replanned.report)
    cli.console.print(f"Новый план / new plan: {folder.resolve()} (changes.csv, replan.json, explain.csv)")


def print_replan(report: dict) -> None:
    cli = _cli()
    table = Table(show_header=False, title="Перепланирование / re-plan", title_justify="left")
    table.add_column()
    table.add_column(justify="right")
    rows = [
        ("Было назначений / previous", report["previous_assignments"]),
        ("Сохранено / kept", report["kept"]),
        ("Снято / dropped", f"{report['dropped']} ({_reasons(report['dropped_by_reason'])})"),
        ("Добавлено / added", f"{report['added']} ({_reasons(report['added_by_reason'])})"),
        ("Изменено всего / changed", report["changed"]),
        ("Затронуто педагогов / teachers changed", report["teachers_changed"]),
        ("Целевая функция / objective", cli.number(report["objective"], 3)),
        ("Статус / status", report["status"]),
        ("Время / seconds", cli.number(report["seconds"], 1)),
    ]
    for label, value in rows:
        table.add_row(label, str(value))
    cli.console.print(table)


def _reasons(counts: dict) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items(), key=lambda item: -item[1])) or "—"


def fit(
    plan_dir: PlanArg,
    teacher: Annotated[Path, typer.Option("--teacher", "-t", help="JSON: teacher_id, school_id, voucher_rub, "
                                                                  "max_hours, role, scores {competency: score}")],
    bundle: BundleOpt = None,
    top: Annotated[int, typer.Option("--top", help="Routes to show", min=1, max=50)] = 5,
    params: ParamsOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """The best few routes for a new teacher now, without moving anyone: gain and cost of each."""
    import pandas as pd

    from marshrut.engine.bundle import load_bundle
    from marshrut.engine.changes import NewTeacher
    from marshrut.engine.explain import plan_indices
    from marshrut.engine.fit import fit_teacher
    from marshrut.engine.options import build_activities

    cli = _cli()
    try:
        _plan_folder(plan_dir)
        region = load_bundle(_bundle_of(plan_dir, bundle))
        parameters = _params(plan_dir, params)
        try:
            spec = NewTeacher.model_validate(json.loads(teacher.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise InputError([Problem(teacher.name, f"некорректное описание учителя: {exc}"[:500], "bad_json")],
                             title="Ошибки в описании нового учителя") from None
        acts = build_activities(region)
        assignments = pd.read_csv(plan_dir / "assignments.csv", dtype=str, keep_default_na=False)
        t, a = plan_indices(region, acts, assignments)
        result = fit_teacher(region, parameters, t, a, spec, top=top, activities=acts)
    except InputError as error:
        _fail(error)
    if as_json:
        print(json.dumps(result.as_dict(), ensure_ascii=False, indent=2))
        return
    table = Table(title=f"Маршруты для {result.teacher_id} / routes (options open: {result.options}, "
                        f"{result.seconds * 1000:.0f} ms)", title_justify="left")
    for column in ("#", "ценность / value", "закрыто / gain", "стоимость / cost", "часы / hours", "шаги / steps"):
        table.add_column(column, overflow="fold")
    for route in result.routes:
        steps = "; ".join(f"{s.kind} {s.resource_id} {s.start}" for s in route.steps)
        table.add_row(str(route.rank), cli.number(route.value, 3), cli.number(route.gain, 3), cli.rub(route.cost_rub),
                      cli.number(route.hours, 0), steps)
    cli.console.print(table)
    if not result.routes:
        cli.console.print("Свободных подходящих вариантов нет (no open option addresses this teacher's needs)")


def sweep(
    bundle: Annotated[Path, typer.Argument(help="Folder of CSV files, .zip or .xlsx")],
    budget: Annotated[Optional[str], typer.Option("--budget", help="Scale budgets, e.g. 0.5x..2x")] = None,
    vouchers: Annotated[Optional[str], typer.Option("--vouchers", help="Scale vouchers, e.g. 0.5x..2x")] = None,
    seats: Annotated[Optional[str], typer.Option("--seats", help="Scale seats and mentor places")] = None,
    points: Annotated[int, typer.Option("--points", help="Points of a range a..b", min=2, max=50)] = 7,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for sweep-*.csv and sweep-*.png")] = Path("sweep"),
    params: Annotated[Optional[Path], typer.Option("--params", help="JSON file of plan parameters")] = None,
    time_limit: Annotated[Optional[float], typer.Option(
        "--time-limit", help="Time limit of one plan, seconds: the sweep takes at most 2.3 times it")] = None,
    workers: Annotated[int, typer.Option("--workers", help="Solver threads", min=1, max=64)] = 2,
) -> None:
    """What-if: need covered as budgets, vouchers or seats scale; table and PNG with the marginal value."""
    from marshrut.engine.bundle import load_bundle
    from marshrut.engine.params import load_params
    from marshrut.engine.sweep import SWEEP_TIME_FACTOR, parse_factors, sweep as run_sweep, sweep_plot

    cli = _cli()
    asked = {k: v for k, v in (("budget", budget), ("vouchers", vouchers), ("seats", seats)) if v}
    if not asked:
        asked = {"budget": "0.5x..2x"}
    try:
        region = load_bundle(bundle)
        parameters = load_params(params)
        if time_limit is not None:
            parameters = parameters.model_copy(update={"time_limit_s": time_limit})
        plans = {what: parse_factors(text, points) for what, text in asked.items()}
    except InputError as error:
        _fail(error)
    from marshrut.engine.deadline import Deadline

    clock_started = Deadline.since_process_start(0.0).started  # the first sweep's clock: the command's start
    for what, factors in plans.items():
        started = time.perf_counter()
        cli.console.print(f"{what}: {len(factors)} точек, не дольше {SWEEP_TIME_FACTOR:g} × "
                          f"{parameters.time_limit_s:g} с, потоков решателя {workers}…")
        frame = run_sweep(region, parameters, what, factors, workers=workers, started=clock_started)
        clock_started = None  # each further sweep from its own start
        out.mkdir(parents=True, exist_ok=True)
        frame.to_csv(out / f"sweep-{what}.csv", index=False, lineterminator="\n")
        sweep_plot(frame, out / f"sweep-{what}.png", title=f"{region.name}: {what}")
        print_sweep(frame)
        cli.console.print(f"{out.resolve()}/sweep-{what}.csv, .png ({time.perf_counter() - started:.1f} с)")


def print_sweep(frame) -> None:
    cli = _cli()
    rub = len(frame) and frame["unit"].iloc[0] == "rub"
    table = Table(title_justify="left")
    for column in ("×", "объём / amount", "закрыто / covered", "доля / share", "цель / objective",
                   "на 1 млн ₽ / per M RUB" if rub else "на место / per seat",
                   "цена строки / row price" + (" per M RUB" if rub else " per seat"), "status"):
        table.add_column(column, justify="right")
    for row in frame.itertuples():
        marginal = row.marginal_need_per_million_rub if rub else row.marginal_need
        price = row.price_objective_per_million_rub if rub else row.price_objective
        table.add_row(f"{row.factor:g}", cli.rub(row.amount) if rub else cli.number(row.amount, 0),
                      cli.number(row.need_covered, 2), f"{100 * row.need_covered_share:.1f} %",
                      cli.number(row.objective, 2), "—" if marginal != marginal else cli.number(marginal, 3),
                      "—" if price != price else cli.number(price, 3), row.status)
    cli.console.print(table)


def register(app: typer.Typer) -> None:
    """Adds explain, replan, fit and sweep to the `marshrut` command line."""
    app.command()(explain)
    app.command()(replan)
    app.command()(fit)
    app.command()(sweep)
