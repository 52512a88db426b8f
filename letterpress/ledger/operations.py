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
        raise InputError(_("%(raw)r is not a time", raw=_short(raw)), code="bad_time",
                         where=where,
                         hint=_("write it as YYYY-MM-DD HH:MM, e.g. 2020-02-24 10:32")) from None
    if not FIRST_YEAR <= when.year <= LAST_YEAR:
        raise InputError(_("%(raw)r is not a plausible delivery time (the year must be from "
                           "%(first)s to %(last)s)", raw=_short(raw), first=FIRST_YEAR,
                           last=LAST_YEAR), code="time_out_of_range", where=where,
                         hint=_("check the date, e.g. 2020-02-24 10:32; leave the time out to "
                                "record the current time"))
    if when.tzinfo is None:
        when = when.astimezone()
    return when


#: The years a delivery can be recorded for: a year-1 date is a typing or export mistake
#: (and cannot be converted between time zones).
FIRST_YEAR, LAST_YEAR = 1970, 2200
#: The longest code, URL or time a scan line may hold; a longer cell is not a scan.
MAX_SCAN_CELL = 2048


#: The longest volunteer name and note a confirmation may carry.
MAX_BY, MAX_NOTE = 200, 2000


def check_lengths(by: Optional[str], note: str) -> None:
    """A volunteer's name or a note far longer than a person writes is a mistake (a file
    pasted in): refused with its length, not stored."""
    for option, value, most in (("--by", by or "", MAX_BY), ("--note", note or "", MAX_NOTE)):
        if len(value) > most:
            raise InputError(_("%(option)s is %(count)s characters long; at most %(most)s",
                               option=option, count=format(len(value), ","),
                               most=format(most, ",")), code="field_too_long",
                             hint=_("give a shorter value to %(option)s", option=option))


def _short(text: str, width: int = 60) -> str:
    """``text`` shortened for a message (a 128 KiB cell is not echoed back)."""
    if len(text) <= width:
        return text
    return text[:width] + "… " + _("(%(count)s characters)", count=format(len(text), ","))


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
        return Confirmation(_short(text), "rejected", error=getattr(exc, "code", "unknown_code"),
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
    check_lengths(by, note)
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
    problem: Optional[InputError] = None   # why the line cannot be recorded (a year-1 time...)


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
    text = text.replace("\r\n", "\n").replace("\r", "\n")   # old Mac (CR-only) exports too
    sample = "\n".join(text.splitlines()[:5])
    delim = max((",", "\t", ";"), key=sample.count) if any(d in sample for d in ",\t;") else "\n"
    out = []
    reader = csv.reader(io.StringIO(text), delimiter=delim)
    if csv.field_size_limit() <= len(text):
        # a long cell is reported, not a crash; only ever raised, as a recipient list may
        # be being read at the same time (letterpress.recipients.read)
        csv.field_size_limit(len(text) + 1)
    try:
        rows = list(enumerate(reader, start=1))
    except csv.Error as exc:
        raise InputError(_("line %(line)s of the scan file cannot be read (%(error)s)",
                           line=reader.line_num, error=exc), code="bad_scan_file",
                         where=Where(file=str(path)),
                         hint=_("export it again as CSV or text, one code or URL a line")) from None
    for number, cells in rows:
        cells = [c.strip() for c in cells if c.strip()]
        if not cells:
            continue
        long = next((c for c in cells if len(c) > MAX_SCAN_CELL), None)
        if long is not None:
            out.append(ScanLine(number, _short(long), None, InputError(
                _("a cell of %(count)s characters is not a code, URL or time",
                  count=format(len(long), ",")), code="bad_scan_line")))
            continue
        code_cell = next((c for c in cells if _looks_like_code(c)), None)
        at, bad_time = None, None
        for c in cells:
            if c is code_cell:
                continue
            try:
                at = parse_time(c)
                break
            except InputError as exc:
                if exc.code == "time_out_of_range":
                    bad_time = exc
                continue
        if code_cell is None:
            if number == 1 and not any(_looks_like_code(c) for c in cells):
                continue  # a header line
            code_cell = cells[0]
        out.append(ScanLine(number, code_cell, at, bad_time if at is None else None))
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

    check_lengths(by, note)
    if not Path(path).is_file():
        raise InputError(_("scan file %(path)s does not exist", path=path), code="file_not_found",
                         hint=_("check the path given to --from"))
    scans = read_scans(path)
    out: List[Confirmation] = []
    seen = set()
    with Ledger.open(db, create=False) as ledger:
        for scan in scans:
            if scan.problem is not None:
                out.append(Confirmation(scan.text, "rejected", error=scan.problem.code,
                                        message=scan.problem.message, line=scan.line))
                continue
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

@dataclass(frozen=True)
class PurgePlan:
    """What :func:`purge` would remove, for the confirmation prompt."""

    title: str
    batch_id: int
    households: int
    folder: Optional[Path]
    paths: Tuple[Path, ...]
    ledger: str = ""
    leftovers: Tuple[Path, ...] = ()     # hidden copies a killed command left behind


def purge_plan(db: Optional[str], title: Optional[str]) -> PurgePlan:
    """Find the batch and the files letterpress wrote for it (removes nothing).

    Only files the ledger lists as written for the batch are ever deleted (for
    a batch built before the ledger kept that list: files with letterpress's own
    names); a user's file in the folder, even in ``print/``, stays.
    """
    from letterpress.ledger import Ledger
    from letterpress.pipeline import outputs

    with Ledger.open(db, create=False) as ledger:
        batch = ledger.find_batch(title)
        count = ledger.status(batch.title)["batches"][0]["households"]
        out = ledger.build_settings(batch.id).get("out")
        lists = ledger.written_files(batch.id)
        described = ledger.describe()
    folder = Path(out) if out else None
    if folder is not None and folder.is_dir() and not lists.get(outputs.folder_key(folder)):
        lists[outputs.folder_key(folder)] = outputs.legacy_files(folder)
    paths = outputs.deletable(lists)
    for base in lists:
        marker = Path(base) / outputs.MARKER
        if marker.is_file() and (outputs.read_marker(Path(base)) or {}).get("batch") == \
                batch.title:
            paths.append(marker)
    leftovers = tuple(p for base in lists for p in _leftovers(Path(base)))
    return PurgePlan(batch.title, batch.id, count, folder, tuple(paths), described, leftovers)


def _leftovers(folder: Path) -> List[Path]:
    if not folder.is_dir():
        return []
    pattern = re.compile(r"^\.(.+\.[a-z0-9_]{8}\.(part|partial)|pdf-work\.[a-z0-9_]{8}|.+\.old-\d+)$")
    found = [p for p in folder.iterdir() if pattern.match(p.name)]
    for sub in folder.iterdir():
        if sub.is_dir() and not sub.name.startswith("."):
            found += [p for p in sub.iterdir() if pattern.match(p.name)]
    return found


def purge(db: Optional[str], plan: PurgePlan) -> int:
    """Remove the batch's personal data from the ledger (counts and states stay) and
    delete the files letterpress wrote for it: letters, slips, run sheets, print packs,
    manifest, and hidden leftovers of killed commands. Returns households."""
    from letterpress.ledger import Ledger
    from letterpress.pipeline import outputs

    with Ledger.open(db, create=False) as ledger:
        names = [f"out:{outputs.folder_key(plan.folder)}"] if plan.folder else []
        with ledger.lock(plan.title, names, "purge"):
            for base in {p.parent for p in plan.leftovers} | (
                    {plan.folder} if plan.folder else set()):
                outputs.sweep(base)
            outputs.delete(plan.paths)
            for base in {p.parent for p in plan.leftovers}:
                outputs.sweep(base)
            return ledger.purge(plan.batch_id)
