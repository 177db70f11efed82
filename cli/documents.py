"""`marshrut documents PLAN --out DIR [--bundle B] [--pdf]`: the route documents of a plan.

A thin shell over engine/documents.py; `register(app)` adds the command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from marshrut.engine.problems import InputError

from .whatif import BundleOpt, PlanArg, _bundle_of, _cli, _fail, _plan_folder


def load_plan_view(plan_dir: Path, bundle: Optional[Path]):
    """The plan folder joined with its region (the bundle recorded in summary.json unless `bundle`)."""
    import pandas as pd

    from marshrut.engine.bundle import load_bundle
    from marshrut.engine.plan_view import plan_view
    from marshrut.engine.replan import previous_params

    _plan_folder(plan_dir)
    region = load_bundle(_bundle_of(plan_dir, bundle))
    assignments = pd.read_csv(plan_dir / "assignments.csv", dtype=str, keep_default_na=False)
    return plan_view(region, previous_params(plan_dir), assignments)


def documents(
    plan_dir: PlanArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the documents (a folder per school)")],
    bundle: BundleOpt = None,
    pdf: Annotated[bool, typer.Option("--pdf", help="Also a .pdf beside each .docx (LibreOffice, headless)")] = False,
    template: Annotated[Optional[Path], typer.Option("--template", help="The region's own route template "
                                                                        "(.docx, docs/documents.md)")] = None,
    school_template: Annotated[Optional[Path], typer.Option("--school-template",
                                                            help="The region's own school summary template")] = None,
) -> None:
    """Individual route documents (ИОМ, .docx; .pdf with --pdf) per teacher, with each school's summary."""
    from marshrut.engine.documents import write_documents

    cli = _cli()
    try:
        view = load_plan_view(plan_dir, bundle)
        with cli.console.status("Документы маршрутов… / writing route documents", spinner="dots"):
            written = write_documents(view, out, pdf=pdf, route_template=template, school_template=school_template)
    except InputError as error:
        _fail(error)
    pdf_note = f", PDF: {len(written.pdfs)} за {written.pdf_seconds:.1f} с" if pdf else ""
    cli.console.print(f"Маршрутов педагогов: {written.teachers}, школ: {written.schools}; .docx: "
                      f"{len(written.files)} за {written.seconds:.1f} с{pdf_note}")
    cli.console.print(f"Документы / documents: {Path(written.folder).resolve()}")


def register(app: typer.Typer) -> None:
    app.command()(documents)
