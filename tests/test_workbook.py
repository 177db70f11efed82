"""The workbook writer (engine/workbook.py) on values of every kind a sheet may hold, read back with
openpyxl: text stays text, blanks stay empty, dates are dates shown ДД.ММ.ГГГГ, numbers keep their
column's format; and write_frames (what engine.deadline times) writes a readable workbook."""

from __future__ import annotations

import datetime as dt
import io

import numpy as np
import openpyxl
import pandas as pd
import pytest

from marshrut.engine.workbook import DATE, RUB, SHARE, Column, Sheet, _Formatted, write_frames, write_workbook


def test_values_of_every_kind_keep_their_type_and_format(tmp_path):
    columns = [Column("Текст", 20), Column("Дата", 12, DATE), Column("Рубли", 13, RUB), Column("Доля", 10, SHARE),
               Column("Без формата", 15)]
    rows = [
        ("=СУММ(A1:A2)", dt.date(2026, 9, 1), 12000, 0.25, dt.date(2027, 5, 31)),
        ("https://example.org/школа", pd.Timestamp("2026-10-05"), np.int64(8000), np.float64(0.5), np.nan),
        ("", None, None, float("inf"), pd.NaT),
        (_Formatted(dt.date(2026, 11, 10), DATE), np.datetime64("2027-02-01"), 0, None, True),
        (_Formatted(1500, RUB), dt.datetime(2026, 9, 1, 0, 0), -5.5, np.float32(0.125), _Formatted(None, RUB)),
    ]
    path = write_workbook(None, tmp_path / "kinds.xlsx", sheets=[lambda _: Sheet("Проверка", columns, rows)])
    sheet = openpyxl.load_workbook(path)["Проверка"]
    cells = [list(row) for row in sheet.iter_rows(min_row=2, max_col=len(columns))]
    values = [[c.value for c in row] for row in cells]

    assert values[0][0] == "=СУММ(A1:A2)" and cells[0][0].data_type == "s"  # text, never a formula
    assert values[1][0] == "https://example.org/школа" and cells[1][0].hyperlink is None
    for r, c in ((0, 1), (1, 1), (3, 1), (4, 1), (0, 4)):  # dates as dates, ДД.ММ.ГГГГ even without a format
        assert cells[r][c].is_date and cells[r][c].number_format == DATE, (r, c)
    assert [values[r][1].date() for r in (0, 1, 3, 4)] == [dt.date(2026, 9, 1), dt.date(2026, 10, 5),
                                                             dt.date(2027, 2, 1), dt.date(2026, 9, 1)]
    assert values[0][4].date() == dt.date(2027, 5, 31)
    assert values[3][0].date() == dt.date(2026, 11, 10) and cells[3][0].number_format == DATE
    assert [values[r][2] for r in (0, 1, 3, 4)] == [12000, 8000, 0, -5.5]
    assert all(cells[r][2].number_format == RUB for r in (0, 1, 3, 4))
    assert values[4][0] == 1500 and cells[4][0].number_format == RUB
    assert [values[r][3] for r in (0, 1, 4)] == [0.25, 0.5, 0.125] and cells[0][3].number_format == SHARE
    assert values[3][4] is True
    # Blank: empty text, None, NaN, infinity, NaT — nothing written, no format left behind.
    blanks = [(1, 4), (2, 0), (2, 1), (2, 2), (2, 3), (2, 4), (3, 3), (4, 4)]
    assert all(values[r][c] is None for r, c in blanks)
    assert sheet.auto_filter.ref == "A1:E6" and sheet.freeze_panes == "A2"


def test_an_empty_sheet_keeps_its_header_filter_and_panes(tmp_path):
    path = write_workbook(None, tmp_path / "empty.xlsx",
                          sheets=[lambda _: Sheet("Пусто", [Column("Код", 12), Column("Дата", 12, DATE)], [])])
    sheet = openpyxl.load_workbook(path)["Пусто"]
    assert [c.value for c in sheet[1]] == ["Код", "Дата"] and sheet.max_row == 1
    assert sheet.auto_filter.ref == "A1:B1" and sheet.freeze_panes == "A2"
    assert sheet.column_dimensions["A"].width == 12


def test_a_sheet_that_fails_leaves_no_workbook(tmp_path):
    def broken(_):
        raise ValueError("a sheet's rows could not be made")

    good = lambda _: Sheet("Хороший", [Column("Код")], [("A",)])  # noqa: E731
    with pytest.raises(ValueError):
        write_workbook(None, tmp_path / "plan.xlsx", sheets=[good, broken])
    assert not (tmp_path / "plan.xlsx").exists()  # never half a workbook that looks whole


def test_write_frames_writes_plain_sheets_to_a_file_object():
    frame = pd.DataFrame({"teacher_id": ["T1", "T2"], "hours": [36, 12], "share": [0.5, np.nan],
                          "start": ["2026-10-05", None]})
    buffer = io.BytesIO()
    write_frames({"pace": frame, "второй": frame.head(1)}, buffer)
    workbook = openpyxl.load_workbook(io.BytesIO(buffer.getvalue()))
    assert workbook.sheetnames == ["pace", "второй"]
    rows = list(workbook["pace"].iter_rows(values_only=True))
    assert rows == [("teacher_id", "hours", "share", "start"), ("T1", 36, 0.5, "2026-10-05"), ("T2", 12, None, None)]
    assert workbook["pace"].auto_filter.ref == "A1:D3" and workbook["pace"].freeze_panes == "A2"
