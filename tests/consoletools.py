"""Helpers shared by the staff console tests: demo lists with a bad row, an app with a token."""
from __future__ import annotations

import io
from pathlib import Path

import openpyxl

from letterpress.resources import examples_dir

DEMO = examples_dir() / "recipients.xlsx"
#: The Excel row whose name the "bad" demo list leaves empty.
BAD_ROW = 5


def demo_bytes(bad: bool = False) -> bytes:
    """The demo list (40 households), optionally with the name of Excel row 5 emptied."""
    if not bad:
        return DEMO.read_bytes()
    wb = openpyxl.load_workbook(DEMO)
    ws = wb.active
    ws.cell(row=BAD_ROW, column=2).value = None
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def write_demo(path: Path, bad: bool = False) -> Path:
    path.write_bytes(demo_bytes(bad))
    return path
