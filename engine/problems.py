"""Input problems: one report of everything wrong with a bundle, parameters or a pinned list.

The same report feeds the CLI (a table, exit status 2) and the API (HTTP 422, as JSON).
Messages are for planners, so they are in Russian; `code` is a stable English key for programs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

# A broken bundle can produce millions of problems (every row of a file in the wrong encoding);
# a planner needs the first few hundred to see the pattern, and the count of the rest.
MAX_PROBLEMS_KEPT = 5000


@dataclass(frozen=True)
class Problem:
    file: str
    message: str
    code: str = "invalid"
    row: int | None = None  # as a spreadsheet shows it: the header is row 1
    column: str | None = None
    value: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f", строка {self.row}"
        if self.column:
            where += f", столбец {self.column}"
        shown = f" (значение: {_shorten(self.value)!r})" if self.value not in (None, "") else ""
        return f"{where}: {self.message}{shown}"


def _shorten(value: str | None, limit: int = 60) -> str | None:
    if value is None or len(value) <= limit:
        return value
    return value[: limit - 1] + "…"


class ProblemReport:
    """Collects problems; keeps the first MAX_PROBLEMS_KEPT and counts all of them."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.total = 0

    def add(self, file: str, message: str, *, code: str = "invalid", row: int | None = None,
            column: str | None = None, value: object = None) -> None:
        self.total += 1
        if len(self.problems) < MAX_PROBLEMS_KEPT:
            shown = None if value is None else _printable(str(value))
            self.problems.append(Problem(file, message, code, row, column, shown))

    def __bool__(self) -> bool:
        return self.total > 0

    def __len__(self) -> int:
        return self.total


def _printable(text: str) -> str:
    """Control characters are shown escaped, never echoed raw to a terminal or a log."""
    if text.isprintable():
        return _shorten(text, 200) or ""
    return _shorten(text.encode("unicode_escape").decode("ascii"), 200) or ""


class InputError(Exception):
    """Bad input from the user: carries every problem found, never a traceback for the user."""

    def __init__(self, problems: list[Problem], total: int | None = None,
                 title: str = "Ошибки во входных данных") -> None:
        self.problems = problems
        self.total = len(problems) if total is None else total
        self.title = title
        first = str(problems[0]) if problems else ""
        super().__init__(f"{title}: {self.total} (first: {first})")

    @classmethod
    def from_report(cls, report: ProblemReport) -> "InputError":
        return cls(report.problems, report.total)

    def as_dict(self) -> dict:
        return {
            "title": self.title,
            "total": self.total,
            "shown": len(self.problems),
            "problems": [p.as_dict() for p in self.problems],
        }


class BundleError(InputError):
    """A region bundle that cannot be planned on."""

    def __init__(self, problems: list[Problem], total: int | None = None,
                 title: str = "Ошибки в наборе данных региона") -> None:
        super().__init__(problems, total, title)
