"""Staff work after ``build``: confirming by hand or from a scanner export, reports, reprints.

Each function opens the ledger, does one job and returns what happened; the
rule of record itself is :mod:`letterpress.ledger.record`.
"""
from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Tuple

from letterpress.choices import OUTCOMES
from letterpress.errors import InputError, LetterpressError, Where
from letterpress.files import atomic_path, spreadsheet_safe, write_csv
from letterpress.i18n import _
from letterpress.ledger import codes

# ---------------------------------------------------------------------------
# Times


def parse_time(text: str, where: Where = Where()) -> _dt.datetime:
    """``2020-02-24 10:32``, ``2020/2/24 10:32:05``, ISO 8601 with or without zone, ``10:32``
    (today). A time without a zone is this machine's local time."""
    raw = str(text).strip()
    value = raw.replace("/", "-").replace("T", " ").replace("Z", "+00:00")
    value = re.sub(r"\s+", " ", value)
    try:
        if re.fullmatch(r"\d{1,2}:\d{2}(:\d{2})?", value):
            t = _dt.time.fromisoformat(value if value.count(":") == 2 or len(value) > 4
                                       else "0" + value)
            when = _dt.datetime.combine(_dt.date.today(), t)
        else:
            m = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})(.*)", value)
            if not m:
                raise ValueError
            y, mo, d, rest = m.groups()
            when = _dt.datetime.fromisoformat(f"{int(y):04d}-{int(mo):02d}-{int(d):02d}"
                                              + (rest if rest.strip() else " 00:00"))
    except ValueError:
        raise InputError(_("%(raw)r is not a time", raw=raw), code="bad_time", where=where,
                         hint=_("write it as YYYY-MM-DD HH:MM, e.g. 2020-02-24 10:32")) from None
    if when.tzinfo is None:
        when = when.astimezone()
    return when


# ---------------------------------------------------------------------------
# Confirming


@dataclass(frozen=True)
class Confirmation:
    """What happened to one code given to ``confirm``."""

    text: str                 # the code or URL as given
    status: str               # created | repeated | already_delivered | rejected
    code: str = ""            # printed form when it was a valid code
    name: str = ""            # household name (staff only)
    seq: int = 0
    error: str = ""           # the error code when rejected
    message: str = ""
    line: int = 0             # line of the import file, when there is one


def _confirm_one(ledger, text: str, outcome: str, by: Optional[str], at, note: str, nonce: str,
                 source: str, line: int = 0) -> Confirmation:
    from letterpress.ledger import RecordError

    try:
        canonical = codes.code_from_url_or_text(text)
        volunteer = by
        if not volunteer:
            volunteer = ledger.household_by_code(canonical).volunteer or "staff"
        result = ledger.record(canonical, outcome, volunteer, at=at, nonce=nonce, note=note,
                               source=source)
    except (RecordError, ValueError, LetterpressError) as exc:
        return Confirmation(text, "rejected", error=getattr(exc, "code", "unknown_code"),
                            message=getattr(exc, "message", str(exc)), line=line)
    h = result.household
    return Confirmation(text, result.status, codes.printed(canonical), h.name, h.seq, line=line)


def confirm(db: Optional[str], texts: Sequence[str], outcome: str, by: str,
            at: Optional[_dt.datetime] = None, note: str = "") -> Tuple[str, List[Confirmation]]:
    """Record ``outcome`` for each code (typed by hand or from signed paper slips).

    Returns the ledger's description and one :class:`Confirmation` per code.
    A typing mistake is caught by the check symbol and reported, never recorded.
    """
    from letterpress.ledger import Ledger

    if outcome not in OUTCOMES:
        raise InputError(_("unknown outcome %(outcome)r", outcome=outcome), code="bad_outcome",
                         hint=_("use one of %(choices)s", choices=", ".join(OUTCOMES)))
    at = at or _dt.datetime.now().astimezone()
    out = []
    with Ledger.open(db, create=False) as ledger:
        for text in texts:
            # One nonce per code and time: confirming the same paper slip twice is one event.
            nonce = _nonce("cli", text, outcome, at.isoformat())
            out.append(_confirm_one(ledger, text, outcome, by, at, note, nonce, "cli"))
        return ledger.describe(), out


def _nonce(*parts: str) -> str:
    canonical = []
    for p in parts:
        try:
            canonical.append(codes.code_from_url_or_text(p))
        except ValueError:
            canonical.append(str(p))
    return "n-" + hashlib.sha256("\x1f".join(canonical).encode("utf-8")).hexdigest()[:40]


@dataclass(frozen=True)
class ScanLine:
    line: int
    text: str
    at: Optional[_dt.datetime]


def read_scans(path: Path) -> List[ScanLine]:
    """Lines of a scanner app's export: a URL or code per line, an optional time column,
    an optional header line. CSV (comma, tab or semicolon) or plain text; UTF-8 or GBK."""
    raw = Path(path).read_bytes()
    for enc in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise InputError(_("the scan file is neither UTF-8 nor GBK text"), code="bad_encoding",
                         where=Where(file=str(path)), hint=_("export it again as CSV or text"))
    sample = "\n".join(text.splitlines()[:5])
    delim = max((",", "\t", ";"), key=sample.count) if any(d in sample for d in ",\t;") else "\n"
    out = []
    for number, cells in enumerate(csv.reader(io.StringIO(text), delimiter=delim), start=1):
        cells = [c.strip() for c in cells if c.strip()]
        if not cells:
            continue
        code_cell = next((c for c in cells if _looks_like_code(c)), None)
        at = None
        for c in cells:
            if c is code_cell:
                continue
            try:
                at = parse_time(c)
                break
            except InputError:
                continue
        if code_cell is None:
            if number == 1 and not any(_looks_like_code(c) for c in cells):
                continue  # a header line
            code_cell = cells[0]
        out.append(ScanLine(number, code_cell, at))
    return out


def _looks_like_code(text: str) -> bool:
    try:
        codes.code_from_url_or_text(text)
        return True
    except ValueError:
        return "/H/" in text.upper()


def confirm_from(db: Optional[str], path: Path, outcome: str = "delivered",
                 by: Optional[str] = None, note: str = "") -> Tuple[str, List[Confirmation]]:
    """Import a scanner export (see :func:`read_scans`) with the same rules as :func:`confirm`.

    A code scanned twice in the file counts once (later lines are ``repeated``);
    importing the same file again records nothing new (each line has a stable nonce).
    Without ``by``, each delivery is recorded for the household's own volunteer.
    """
    from letterpress.ledger import Ledger

    if not Path(path).is_file():
        raise InputError(_("scan file %(path)s does not exist", path=path), code="file_not_found",
                         hint=_("check the path given to --from"))
    scans = read_scans(path)
    out: List[Confirmation] = []
    seen = set()
    with Ledger.open(db, create=False) as ledger:
        for scan in scans:
            try:
                key = codes.code_from_url_or_text(scan.text)
            except ValueError:
                key = None
            if key is not None and key in seen:
                out.append(Confirmation(scan.text, "repeated", codes.printed(key), line=scan.line,
                                        message=_("scanned more than once in this file")))
                continue
            at = scan.at or _dt.datetime.now().astimezone()
            nonce = _nonce("import", scan.text, outcome,
                           scan.at.isoformat() if scan.at else "")
            result = _confirm_one(ledger, scan.text, outcome, by, at, note, nonce, "import",
                                  scan.line)
            if key is not None and result.status != "rejected":
                seen.add(key)
            out.append(result)
        return ledger.describe(), out


# ---------------------------------------------------------------------------
# Reports

_REPORT_HEADERS = {
    "zh": ("序号", "编号", "姓名", "地址", "志愿者", "备注", "状态", "最后结果", "时间", "记录人",
           "结果说明", "重复记录"),
    "en": ("seq", "id", "name", "address", "volunteer", "notes", "state", "last outcome", "time",
           "recorded by", "outcome note", "duplicates"),
}
_WORDS = {
    "zh": {"outstanding": "待送达", "delivered": "已送达", "failed": "未送达", "withdrawn": "已撤回",
           "not-home": "不在家", "refused": "拒收", "proxy": "他人代收", "hospital": "住院",
           "other": "其他"},
    "en": {"not-home": "not home", "proxy": "received by neighbour/relative"},
}


def report_rows(ledger, batch_id: int, lang: str) -> Iterable[list]:
    words = _WORDS.get(lang, {})
    for v in ledger.household_rows(batch_id):
        when = v.last_at.astimezone().strftime("%Y-%m-%d %H:%M") if v.last_at else ""
        yield [v.seq, v.key, v.name, v.address, v.volunteer, v.notes,
               words.get(v.state, v.state), words.get(v.last_outcome, v.last_outcome), when,
               v.last_by, v.last_note, v.duplicates or ""]


def report(db: Optional[str], title: Optional[str], fmt: str, out: Path) -> Tuple[str, int]:
    """One row per household: state, last outcome, its time, who and the note.

    CSV is UTF-8 with a BOM; cells a spreadsheet could run as a formula are neutralised.
    Returns the ledger's description and the number of rows.
    """
    from letterpress.ledger import Ledger

    if fmt not in ("csv", "xlsx"):
        raise InputError(_("unknown report format %(fmt)r", fmt=fmt), code="bad_format",
                         hint=_("use --format csv or --format xlsx"))
    with Ledger.open(db, create=False) as ledger:
        batch = ledger.find_batch(title)
        lang = batch.lang if batch.lang in _REPORT_HEADERS else "zh"
        rows = list(report_rows(ledger, batch.id, lang))
        described = ledger.describe()
    header = _REPORT_HEADERS[lang]
    if fmt == "csv":
        write_csv(out, header, rows)
    else:
        _write_xlsx(out, header, rows, batch.title)
    return described, len(rows)


def _write_xlsx(path: Path, header, rows, title: str) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    ws.title = "report"
    ws.append(list(header))
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for row in rows:
        ws.append([v if isinstance(v, int) else spreadsheet_safe(v) for v in row])
        for cell in ws[ws.max_row]:
            if isinstance(cell.value, str):
                cell.data_type = "s"   # text, never a formula
    ws.freeze_panes = "A2"
    for col, width in zip("ABCDEFGHIJKL", (6, 10, 10, 28, 10, 20, 10, 14, 17, 10, 20, 8)):
        ws.column_dimensions[col].width = width
    with atomic_path(path) as tmp:
        wb.save(tmp)


# ---------------------------------------------------------------------------
# Purging a finished batch

#: What ``build``, ``pdf`` and ``reprint`` write into a batch's folder.
BATCH_OUTPUTS = ("letters", "letters.docx", "letters.pdf", "slips.pdf", "runsheets", "print",
                 "manifest.csv", "reprint-*")


@dataclass(frozen=True)
class PurgePlan:
    """What :func:`purge` would remove, for the confirmation prompt."""

    title: str
    batch_id: int
    households: int
    folder: Optional[Path]
    paths: Tuple[Path, ...]
    ledger: str = ""


def purge_plan(db: Optional[str], title: Optional[str]) -> PurgePlan:
    """Find the batch and the output files that hold its personal data (removes nothing)."""
    from letterpress.ledger import Ledger

    with Ledger.open(db, create=False) as ledger:
        batch = ledger.find_batch(title)
        count = ledger.status(batch.title)["batches"][0]["households"]
        out = ledger.build_settings(batch.id).get("out")
        described = ledger.describe()
    folder = Path(out) if out else None
    paths: List[Path] = []
    if folder is not None and folder.is_dir():
        for pattern in BATCH_OUTPUTS:
            paths += sorted(folder.glob(pattern))
    return PurgePlan(batch.title, batch.id, count, folder, tuple(paths), described)


def purge(db: Optional[str], plan: PurgePlan) -> int:
    """Remove the batch's personal data from the ledger (counts and states stay) and
    delete its letters, slips, run sheets, print packs and manifest. Returns households."""
    import shutil

    from letterpress.ledger import Ledger

    for path in plan.paths:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    with Ledger.open(db, create=False) as ledger:
        return ledger.purge(plan.batch_id)
