"""Reading a spreadsheet (CSV or XLSX) into rows of text, as a person sees them in Excel.

This module knows nothing about recipients: it turns a file into
:class:`Sheet` rows, each with the row number Excel shows and the text of
every cell. ``recipients`` decides what the columns mean.
"""
from __future__ import annotations

import codecs
import csv
import datetime as _dt
import io
import re
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from letterpress.errors import InputError, Where
from letterpress.i18n import N_, _

#: File name endings read as delimited text.
TEXT_SUFFIXES = (".csv", ".tsv", ".txt")
#: File name endings read as Excel workbooks.
XLSX_SUFFIXES = (".xlsx", ".xlsm")
#: Spreadsheet formats that cannot be read (old Excel and WPS, OpenDocument, Numbers).
OLD_SUFFIXES = (".xls", ".et", ".ods", ".numbers")
#: Delimiters accepted in text files, in order of preference.
DELIMITERS = (",", "\t", ";")

_OLE_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"     # old .xls / .et files
#: A workbook saved with a password: an OLE file holding these streams, not a zip.
_ENCRYPTED = ("EncryptedPackage".encode("utf-16-le"), "EncryptionInfo".encode("utf-16-le"))
#: Excel's own limit for the text of one cell.
EXCEL_CELL_LIMIT = 32_767
#: The most a workbook may unpack to (a recipient list of 100,000 rows is a few tens of MB).
MAX_XLSX_UNPACKED = 256 * 1024 * 1024
_SAVE_AS = N_("open it in Excel or WPS and use Save As: Excel Workbook (.xlsx) or CSV")


@dataclass(frozen=True)
class Sheet:
    """The non-blank rows of a spreadsheet.

    ``rows`` holds ``(row number as Excel shows it, [cell text, ...])``;
    fully blank rows are left out but still counted in the numbering.
    """

    rows: Iterable[Tuple[int, List[str]]]     # text files: read as they are walked, once
    encoding: Optional[str] = None      # text files only
    delimiter: Optional[str] = None     # text files only
    sheet: Optional[str] = None         # workbooks only: the sheet read


def column_letter(index: int) -> str:
    """Excel's letter for a 0-based column index: 0 -> ``A``, 27 -> ``AB``."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def read(path, *, encoding: Optional[str] = None, sheet: Optional[str] = None,
         header_score: Optional[Callable[[Sequence[str]], int]] = None) -> Sheet:
    """Read ``path`` by its file name ending.

    ``header_score`` rates a row as a header (how many cells are known
    column names); it helps to choose the delimiter of a text file.
    Raises :class:`InputError` for a file that cannot be read.
    """
    p = Path(path)
    where = Where(file=str(path))
    suffix = p.suffix.lower()
    if suffix not in TEXT_SUFFIXES + XLSX_SUFFIXES + OLD_SUFFIXES:
        raise InputError(
            _("%(name)s is not a recipient list letterpress can read", name=p.name),
            code="unknown_format", where=where,
            hint=_("give an Excel workbook (.xlsx) or a CSV file (.csv)"))
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise InputError(_("the file %(path)s does not exist", path=path), code="file_not_found", where=where,
                         hint=_("check the path and the file name")) from None
    except OSError as exc:
        raise InputError(_("the file %(path)s cannot be read: %(value)s",
                           path=path, value=exc.strerror or exc),
                         code="unreadable_file", where=where,
                         hint=_("check that the path is a file you may read")) from None
    # What the file is counts more than its name: a workbook saved as "list.csv"
    # or "list.xls" is still read as a workbook.
    is_zip = data.startswith(b"PK\x03\x04")
    if data.startswith(_OLE_SIGNATURE) and all(name in data for name in _ENCRYPTED):
        raise InputError(
            _("%(name)s is protected with a password, so letterpress cannot read it",
              name=p.name), code="password_protected", where=where,
            hint=_("open it in Excel or WPS with the password, remove the password (File > Info "
                   "> Protect Workbook > Encrypt with Password, leave it empty) and save, or "
                   "save a copy as CSV"))
    if data.startswith(_OLE_SIGNATURE) or (suffix in OLD_SUFFIXES and not is_zip):
        raise InputError(
            _("%(name)s is an old Excel file (.xls) or another spreadsheet format that "
              "letterpress cannot read", name=p.name),
            code="old_excel", where=where, hint=_(_SAVE_AS))
    if suffix in XLSX_SUFFIXES or is_zip:
        return _read_xlsx(data, where, sheet)
    text, used = _decode(data, encoding, where)
    if "\x00" in text:
        raise InputError(_("%(name)s does not look like a text file (it contains NUL bytes)",
                           name=p.name),
                         code="bad_encoding", where=where, hint=_(_SAVE_AS))
    delimiter = "\t" if suffix == ".tsv" else _choose_delimiter(text, header_score)
    formulas = '="' in text
    longest = len(text) + 1
    if used in (encoding, "utf-8", "utf-8-sig", "gb18030"):
        # decoded again as it is parsed: neither the text nor a copy of it (four bytes a
        # character, in a StringIO) is held beside a district's rows
        text = ""
        lines: IO[str] = io.TextIOWrapper(io.BytesIO(data), encoding=used, newline="")
    else:
        lines = io.StringIO(text, newline="")
    return Sheet(rows=_text_rows(lines, formulas, delimiter, where, longest), encoding=used,
                 delimiter=delimiter)


def _check_cells(rows: Iterable[Tuple[int, List[str]]], where: Where) -> None:
    for number, cells in rows:
        _check_row(number, cells, where)


def _check_row(number: int, cells: Sequence[str], where: Where) -> None:
    """No cell longer than Excel itself allows (a broken export, or not a list at all)."""
    for index, cell in enumerate(cells):
        if len(cell) > EXCEL_CELL_LIMIT:
            raise InputError(
                _("a cell holds %(count)s characters; Excel allows at most %(most)s in a "
                  "cell", count=format(len(cell), ","), most=format(EXCEL_CELL_LIMIT, ",")),
                code="cell_too_long",
                where=Where(file=where.file, row=number, column=column_letter(index)),
                hint=_("check that cell: a recipient's details are a few dozen characters; "
                       "a quote mark that is not closed can also swallow the rest of a file"))


def _check_unpacked_size(data: bytes, where: Where) -> None:
    """Refuse a workbook that would unpack to more than :data:`MAX_XLSX_UNPACKED` (a "zip
    bomb" inflates a small file to gigabytes); the sizes are those the zip declares, which
    reading never exceeds."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            total = sum(info.file_size for info in zf.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return      # openpyxl says what is wrong with it
    if total > MAX_XLSX_UNPACKED:
        raise InputError(
            _("the workbook would take %(size)s MB once unpacked; letterpress reads workbooks "
              "of up to %(most)s MB", size=format(total / 2**20, ",.0f"),
              most=format(MAX_XLSX_UNPACKED / 2**20, ",.0f")), code="zip_bomb",
            where=where, hint=_("check that this is the recipient list; save the list alone as "
                                "a new workbook or as CSV"))


# -- text files ---------------------------------------------------------------------------------

def _decode(data: bytes, encoding: Optional[str], where: Where) -> Tuple[str, str]:
    """Text and the name of the encoding that decoded it."""
    if encoding:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise InputError(_("unknown encoding %(encoding)r", encoding=encoding), code="unknown_encoding",
                             where=where, hint=_("use for example utf-8, gbk or gb18030")) from None
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError as exc:
            raise InputError(
                _("the file is not valid %(encoding)s (byte %(start)s cannot be decoded)",
                  encoding=encoding, start=exc.start),
                code="bad_encoding", where=where,
                hint=_("leave out --encoding to let letterpress detect it, or name the right "
                       "one"),
            ) from None
    try:
        used = "utf-8-sig" if data.startswith(codecs.BOM_UTF8) else "utf-8"
        return data.decode("utf-8-sig"), used
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030"), "gb18030"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None or best.encoding is None:
        raise InputError(
            _("the file's text encoding cannot be recognised"), code="bad_encoding", where=where,
            hint=_("save it from Excel as 'CSV UTF-8', or name the encoding with --encoding"))
    return str(best), best.encoding


def _records(text: Union[str, IO[str]], delimiter: str, strict: bool):
    lines = io.StringIO(text, newline="") if isinstance(text, str) else text
    return csv.reader(lines, delimiter=delimiter, strict=strict)


def _choose_delimiter(text: str, header_score: Optional[Callable[[Sequence[str]], int]]) -> str:
    """The delimiter whose rows look most like a recipient list.

    For each candidate the first rows are split; the best is the one with the
    most recognised header names, then the most cells in a row, then the
    preferred order (comma, tab, semicolon). A single-column file is comma.
    """
    sample = text[:65536]
    best, best_score = ",", (-1, -1, 0)
    for rank, delimiter in enumerate(DELIMITERS):
        known = cells = 0
        try:
            for i, record in enumerate(_records(sample, delimiter, strict=False)):
                if i >= 20:
                    break
                if header_score is not None:
                    known = max(known, header_score(record))
                cells = max(cells, sum(1 for c in record if c.strip()))
        except csv.Error:
            continue
        score = (known, cells, -rank)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _text_rows(lines: IO[str], formulas: bool, delimiter: str, where: Where,
               longest: int) -> Iterator[Tuple[int, List[str]]]:
    """The non-blank rows of ``lines``, parsed as they are read (a district's are never all
    held); ``formulas``: the text has cells written as ="0123" (rare), so each cell is
    looked at. A row that cannot be parsed, or a cell longer than Excel allows, raises
    :class:`InputError` when its turn comes."""
    if csv.field_size_limit() < longest:
        # a long cell is read, then reported as too long (not as a broken quote); only
        # ever raised, as another list may be being read at the same time
        csv.field_size_limit(longest)
    reader = _records(lines, delimiter, strict=True)
    number = 0
    try:
        for record in reader:
            number += 1
            if "".join(record).strip():     # a row with something in it
                cells = [_unformula(cell) for cell in record] if formulas else record
                _check_row(number, cells, where)
                yield number, cells
    except csv.Error as exc:
        raise InputError(
            _("the file cannot be read as CSV near line %(line_num)s: %(exc)s",
              line_num=reader.line_num, exc=exc),
            code="bad_csv", where=Where(file=where.file, row=number + 1),
            hint=_("a quote mark is probably not closed; %(save_as)s",
                   save_as=_(_SAVE_AS))) from None


_TEXT_FORMULA = re.compile(r'^="(.*)"$', re.DOTALL)


def _unformula(cell: str) -> str:
    """``="0123"`` (written to keep a number as text in Excel) -> ``0123``, as Excel shows it."""
    match = _TEXT_FORMULA.match(cell)
    return match.group(1).replace('""', '"') if match else cell


# -- workbooks ----------------------------------------------------------------------------------

def _read_xlsx(data: bytes, where: Where, sheet: Optional[str]) -> Sheet:
    import openpyxl
    from openpyxl.chartsheet import Chartsheet

    _check_unpacked_size(data, where)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True,
                                        keep_links=False)
            sheets = [ws for ws in wb.worksheets if not isinstance(ws, Chartsheet)]
            if sheet is None:
                if not sheets:
                    raise InputError(_("the workbook has no worksheet"), code="bad_xlsx",
                                     where=where, hint=_("put the recipient list on the first "
                                                         "sheet"))
                ws = sheets[0]
            else:
                ws = _find_sheet(sheets, sheet, where)
            ws.reset_dimensions()       # do not trust the stored size of the table
            rows = _xlsx_rows(ws, _merged_ranges(data, ws))
            wb.close()
        _check_cells(rows, where)
    except InputError:
        raise
    except Exception as exc:  # a damaged workbook fails in many ways inside openpyxl
        raise InputError(_("the workbook cannot be opened (%(name)s: %(exc)s)",
                           name=exc.__class__.__name__, exc=exc),
                         code="bad_xlsx", where=where,
                         hint=_("check that it opens in Excel, then %(save_as)s",
                                save_as=_(_SAVE_AS))) from None
    return Sheet(rows=rows, sheet=ws.title)


def _find_sheet(sheets, name: str, where: Where):
    for ws in sheets:
        if ws.title == name:
            return ws
    wanted = name.strip().casefold()
    for ws in sheets:
        if ws.title.strip().casefold() == wanted:
            return ws
    names = ", ".join(repr(ws.title) for ws in sheets) or "none"
    raise InputError(_("the workbook has no sheet named %(name)r", name=name), code="unknown_sheet",
                     where=where, hint=_("the sheets are: %(names)s", names=names))


_MERGE_CELL = re.compile(rb"<(?:\w+:)?mergeCell\b[^>]*?\bref=\"([A-Za-z]+[0-9]+:[A-Za-z]+[0-9]+)\"")


def _merged_ranges(data: bytes, ws) -> List[Tuple[int, int, int]]:
    """``(first row, last row, column)`` of each merged range, from the sheet's XML.

    Read-only worksheets do not keep merged ranges, so the ``<mergeCell>``
    elements are read from the worksheet part directly.
    """
    from openpyxl.utils.cell import range_boundaries

    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        xml = zf.read(ws._worksheet_path.lstrip("/"))
    out = []
    for ref in _MERGE_CELL.findall(xml):
        min_col, min_row, _, max_row = range_boundaries(ref.decode("ascii"))
        if max_row > min_row:
            out.append((min_row, max_row, min_col))
    return out


def _xlsx_rows(ws, merged: Sequence[Tuple[int, int, int]]) -> List[Tuple[int, List[str]]]:
    """Rows of a read-only worksheet as text, merged ranges filled down.

    A merged range shows its top-left value; filling it down its first column
    gives every row of a vertically merged range that value. A row with no
    value of its own stays blank even where a merged range crosses it.
    """
    starts: Dict[int, List[Tuple[int, int]]] = {}
    for first, last, column in merged:
        starts.setdefault(first, []).append((column, last))
    active: Dict[int, Tuple[str, int]] = {}      # column -> (text, last row)
    rows = []
    for number, cells in enumerate(ws.iter_rows(), start=1):
        texts = [cell_text(c.value, getattr(c, "number_format", None)) for c in cells]
        own = any(t.strip() for t in texts)
        for column, last in starts.get(number, ()):
            top = texts[column - 1] if column <= len(texts) else ""
            active[column] = (top, last)
        for column, (text, last) in list(active.items()):
            if last < number:
                del active[column]
            elif own:
                texts.extend([""] * (column - len(texts)))
                texts[column - 1] = text
        while texts and not texts[-1].strip():
            texts.pop()
        if own:
            rows.append((number, texts))
    return rows


_ZEROS = re.compile(r"^(0+)(?:\.(0+))?(%?)$")


def cell_text(value, number_format: Optional[str] = "General") -> str:
    """The text a person sees in a cell.

    Whole numbers never show ``.0`` or an exponent (a phone stored as a
    number stays ``13812345678``); dates are ``YYYY-MM-DD``; simple number
    formats such as ``000`` (zero-padded) and ``0.00`` are honoured.
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, _dt.datetime):
        if value.time() == _dt.time(0):
            return value.date().isoformat()
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, _dt.date):
        return value.isoformat()
    if isinstance(value, _dt.time):
        return value.strftime("%H:%M")
    if isinstance(value, (int, float)):
        match = _ZEROS.match(number_format or "")
        if match:
            whole, decimals, percent = match.groups()
            number = value * 100 if percent else value
            text = f"{number:.{len(decimals or '')}f}"
            head, dot, tail = text.partition(".")
            sign = "-" if head.startswith("-") else ""
            return sign + head.lstrip("-").zfill(len(whole)) + dot + tail + percent
        if isinstance(value, float):
            if value.is_integer():
                return str(int(value))
            return format(value, ".15g")
        return str(value)
    return str(value)
