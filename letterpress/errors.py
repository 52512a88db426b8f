"""Errors and problems, each with a stable code from :data:`CATALOGUE`.

The library never prints and never exits: it raises a :class:`LetterpressError`
(or collects :class:`Problem` records and raises :class:`CheckFailed`), and
``letterpress.cli`` turns those into messages and exit statuses.

Every code the library raises is a line of :data:`CATALOGUE` (tests/test_errors.py
reads the source to make sure; README's table of codes is checked against it).
A new code is one new line there. A bug is not a user mistake: it stays a plain
Python exception (``ValueError``, ``RuntimeError``...) with no code, and the CLI
reports it as an internal error.
"""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Dict, Iterable, NamedTuple, Optional

from letterpress.i18n import _, ngettext


class ExitStatus(enum.IntEnum):
    """Exit statuses of the ``letterpress`` command, in one place."""

    OK = 0
    ERROR = 1          # a user mistake or a failed check: the message says what to fix
    USAGE = 2          # wrong options (Click's own status)
    PARTIAL = 3        # the batch completed but some documents failed (named in the output)
    INTERRUPTED = 130


class Entry(NamedTuple):
    """A line of the catalogue: the code, the exit status it leads to, what it means.

    Warnings (problems that do not stop a batch) have the status ``OK``.
    """

    code: str
    exit_status: ExitStatus
    meaning: str


_ERR, _WARN, _PART = ExitStatus.ERROR, ExitStatus.OK, ExitStatus.PARTIAL

#: Every error and warning code, by stage. Add a code by adding its line.
CATALOGUE: Dict[str, Entry] = {e.code: e for e in (
    # Settings and files
    Entry("bad_config", _ERR, "letterpress.toml cannot be read or holds a wrong setting"),
    Entry("no_config", _ERR, "the config file given does not exist"),
    Entry("bad_date", _ERR, "a date is not written YYYY-MM-DD"),
    Entry("bad_layout", _ERR, "an unknown slip layout"),
    Entry("bad_slip_field", _ERR, "slips cannot show a field that was asked for"),
    Entry("no_template", _ERR, "the template is neither a built-in one nor an existing file"),
    # Recipient lists: reading
    Entry("no_recipients", _ERR, "no recipient list given, or it does not exist"),
    Entry("file_not_found", _ERR, "a file given does not exist"),
    Entry("unreadable_file", _ERR, "a file cannot be read (permissions, a folder...)"),
    Entry("unknown_format", _ERR, "a file type letterpress does not read"),
    Entry("old_excel", _ERR, "an .xls workbook (save it as .xlsx)"),
    Entry("cell_too_long", _ERR, "a cell longer than Excel's 32,767 characters"),
    Entry("bad_xlsx", _ERR, "a workbook that cannot be opened"),
    Entry("unknown_sheet", _ERR, "the workbook has no sheet of that name"),
    Entry("bad_csv", _ERR, "a CSV file that cannot be parsed"),
    Entry("bad_encoding", _ERR, "a text file's encoding is not recognised"),
    Entry("unknown_encoding", _ERR, "--encoding names an encoding Python does not know"),
    # Recipient lists: rows
    Entry("no_header", _ERR, "no header row with a name column was found"),
    Entry("duplicate_header", _ERR, "two columns have the same header"),
    Entry("ambiguous_column", _WARN, "several columns look like one field; the first is used"),
    Entry("empty_list", _ERR, "the list has no households"),
    Entry("extra_cells", _ERR, "a row holds cells under no header"),
    Entry("summary_row", _ERR, "a totals row among the households"),
    Entry("repeated_header", _ERR, "the header row appears again among the households"),
    Entry("missing_name", _ERR, "a household has no name"),
    Entry("missing_address", _ERR, "a household has no address (or the list no address column)"),
    Entry("bad_phone", _ERR, "a phone is neither a mobile nor a landline number"),
    Entry("phone_scientific", _ERR, "Excel turned a phone into scientific notation"),
    Entry("duplicate_household", _ERR, "the same name and address appear twice"),
    Entry("duplicate_id", _ERR, "two households have the same id"),
    Entry("no_volunteer", _WARN, "households without a volunteer"),
    # Templates and letters
    Entry("template_not_found", _ERR, "the Word template does not exist"),
    Entry("bad_template", _ERR, "the Word template cannot be opened as a .docx"),
    Entry("template_syntax", _ERR, "a tag in the template is not valid"),
    Entry("template_structure", _ERR, "the tags would make the document invalid Word XML"),
    Entry("template_unsafe", _ERR, "a tag reaches into Python internals; templates are data, never code"),
    Entry("template_limit", _ERR, "a letter would take too long, loop too often or grow too large"),
    Entry("undefined_field", _ERR, "a field has no value for a letter"),
    Entry("render_failed", _ERR, "a letter could not be rendered from the template"),
    Entry("unknown_field", _ERR, "the template uses a field no column or setting provides"),
    Entry("ledger_field", _ERR, "the template uses a field only `build` provides"),
    Entry("empty_field", _WARN, "a field the template uses is empty in some rows"),
    Entry("picture_not_found", _ERR, "[pictures] names a picture the template does not have"),
    Entry("bad_picture", _ERR, "a picture file is missing, too large, not a picture, or "
                               "outside the list's folder"),
    Entry("empty_picture", _WARN, "a picture column is empty in some rows"),
    Entry("unknown_column", _ERR, "[pictures] takes a column the list does not have"),
    Entry("unknown_plugin", _ERR, "a Jinja plugin named in [jinja] is not installed"),
    Entry("docxtpl_fallback", _WARN, "docxtpl renders the letters of this template (slower)"),
    # Slips and fonts
    Entry("font_missing", _ERR, "the font file given does not exist"),
    Entry("font_cff", _ERR, "the font has PostScript outlines, which cannot be embedded"),
    Entry("font_unusable", _ERR, "the font file cannot be used"),
    Entry("font_fallback", _WARN, "no CJK font was found; another is used"),
    Entry("missing_glyph", _WARN, "the slip font cannot draw some characters of a name"),
    Entry("qr_too_long", _ERR, "the base URL makes the QR payload too long"),
    Entry("qr_too_small", _ERR, "QR modules would be too small to scan on this layout"),
    Entry("no_code", _ERR, "a household has no code yet (build registers them)"),
    Entry("loopback_url", _WARN, "the codes point at an address phones cannot open"),
    # Build and rebuild
    Entry("check_failed", _ERR, "the check found errors; nothing was written"),
    Entry("no_build_settings", _ERR, "an old batch kept no build settings to rebuild with"),
    Entry("unknown_household", _ERR, "no household with that id in the batch"),
    Entry("missing_letters", _ERR, "letters of the batch are missing in the output folder"),
    Entry("file_name_too_long", _ERR, "a file name the output folder's file system cannot hold"),
    Entry("disk_full", _ERR, "the disk of the output folder has no room for the batch"),
    Entry("reprint_picture_columns", _ERR, "letters with pictures from a list column cannot "
                                           "be reprinted from the ledger"),
    # PDF and printing
    Entry("no_soffice", _ERR, "LibreOffice is not installed"),
    Entry("soffice_failed", _ERR, "LibreOffice stopped working on some letters"),
    Entry("pdf_failed", _PART, "some letters could not be converted to PDF; the rest were"),
    Entry("duplicate_pdf_name", _ERR, "two letters would make the same PDF"),
    Entry("bad_pdf", _ERR, "a PDF cannot be read to make print packs"),
    # Ledger: opening
    Entry("bad_db_url", _ERR, "--db is not a database URL"),
    Entry("missing_driver", _ERR, "the database driver is not installed"),
    Entry("no_ledger", _ERR, "there is no ledger there yet"),
    Entry("not_a_ledger", _ERR, "the file or database is not a letterpress ledger"),
    Entry("ledger_too_new", _ERR, "the ledger was made by a newer letterpress"),
    Entry("ledger_busy", _ERR, "the ledger is locked by another program"),
    Entry("ledger_unreachable", _ERR, "the database server cannot be reached"),
    # Ledger: batches and households
    Entry("unknown_batch", _ERR, "no batch of that title or number"),
    Entry("batch_required", _ERR, "the ledger holds several batches: say which"),
    Entry("batch_purged", _ERR, "the batch's personal data was purged"),
    Entry("missing_id", _ERR, "a household has no id"),
    Entry("id_reused", _WARN, "an id now names another household; it gets a new code"),
    Entry("unknown_volunteer", _ERR, "no volunteer of that name in the batch"),
    # Codes and recording
    Entry("code_empty", _ERR, "no code given"),
    Entry("code_length", _ERR, "a code with too few or too many symbols"),
    Entry("code_symbol", _ERR, "a character that is not a code symbol"),
    Entry("code_check", _ERR, "the check symbol does not match (a symbol is mistyped)"),
    Entry("code_not_household_url", _ERR, "a link that holds no household code"),
    Entry("unknown_code", _ERR, "a code that is not in the ledger"),
    Entry("revoked_code", _ERR, "a code replaced by a reprinted slip"),
    Entry("withdrawn", _ERR, "the household was taken off the batch's list"),
    Entry("not_authorised", _ERR, "a badge, staff link or code of another batch is refused"),
    Entry("bad_outcome", _ERR, "not one of the outcomes"),
    Entry("note_required", _ERR, "this outcome needs a note"),
    Entry("bad_nonce", _ERR, "the nonce is too long"),
    Entry("bad_time", _ERR, "a time that cannot be read"),
    Entry("time_out_of_range", _ERR, "a time outside the years a delivery can be recorded for"),
    Entry("bad_scan_file", _ERR, "a scan file that cannot be read as CSV or text"),
    Entry("bad_scan_line", _ERR, "a line of a scan file that cannot be recorded"),
    Entry("field_too_long", _ERR, "a volunteer name or note far longer than a person writes"),
    Entry("bad_format", _ERR, "an unknown report format"),
    Entry("reason_required", _ERR, "an undo needs a reason"),
    Entry("unknown_event", _ERR, "no event of that number"),
    Entry("cannot_undo", _ERR, "the event is itself an undo"),
    Entry("already_undone", _ERR, "the event was already undone"),
    Entry("bad_text", _ERR, "a note or nonce holds a NUL character or a lone surrogate"),
    # Output folders, locks, reprints and badges
    Entry("folder_not_ours", _ERR, "the output folder holds files letterpress did not write "
                                   "where it would write"),
    Entry("folder_of_other_batch", _ERR, "the output folder holds another batch's files"),
    Entry("out_not_a_folder", _ERR, "--out names a file, not a folder"),
    Entry("batch_busy", _ERR, "another letterpress is writing this batch right now"),
    Entry("reprint_unfinished", _ERR, "a reprint was interrupted; run it again first"),
    Entry("volunteer_off_list", _ERR, "the volunteer is no longer on the batch's list"),
    # Serving
    Entry("bad_proxy", _ERR, "--proxy is not an IP address or network"),
    Entry("port_in_use", _ERR, "another program uses the port"),
    Entry("cannot_bind", _ERR, "the server cannot listen on that address"),
    # Staff console: accounts, rounds and uploads
    Entry("bad_staff_name", _ERR, "a staff account name that is empty or too long"),
    Entry("staff_exists", _ERR, "a staff account of that name exists already"),
    Entry("unknown_staff", _ERR, "no staff account of that name"),
    Entry("weak_password", _ERR, "a password too short to protect residents' data"),
    Entry("unknown_token", _ERR, "a staff token or invite that is unknown, used or expired"),
    Entry("bad_title", _ERR, "a round title that is empty or too long"),
    Entry("round_exists", _ERR, "a round of that title exists already"),
    Entry("unknown_round", _ERR, "no round of that number"),
    Entry("bad_field", _ERR, "a form field of the console that is missing or wrong"),
    Entry("bad_upload", _ERR, "an upload that is not a file the console can use"),
    Entry("empty_upload", _ERR, "an upload with nothing in it"),
    Entry("too_large", _ERR, "an upload larger than the server accepts"),
    Entry("wrong_type", _ERR, "an upload whose content is not the kind of file asked for"),
    Entry("zip_bomb", _ERR, "a workbook that would unpack to far more than its size"),
    Entry("password_protected", _ERR, "a workbook protected by a password"),
)}


def catalogue_table() -> str:
    """The catalogue as the Markdown table README.md shows (``python -m letterpress.errors``)."""
    shown = {ExitStatus.OK: "0 (warning)", ExitStatus.PARTIAL: "3 (the rest was done)"}
    lines = ["| code | exit status | meaning |", "|---|---|---|"]
    lines += [f"| `{e.code}` | {shown.get(e.exit_status, int(e.exit_status))} | {e.meaning} |"
              for e in CATALOGUE.values()]
    return "\n".join(lines) + "\n"


def exit_status_of(code: str) -> ExitStatus:
    """The exit status for ``code`` (``ERROR`` for a code not in the catalogue)."""
    entry = CATALOGUE.get(code)
    return entry.exit_status if entry else ExitStatus.ERROR


@dataclass(frozen=True)
class Where:
    """Where a problem is, in the user's terms.

    ``row`` is the row number as Excel shows it (the header is row 1);
    ``part`` is a place in a Word template such as ``"paragraph 7"`` or
    ``"header, paragraph 1"``.
    """

    file: Optional[str] = None
    row: Optional[int] = None
    column: Optional[str] = None
    part: Optional[str] = None

    def __str__(self) -> str:
        bits = []
        if self.file:
            bits.append(self.file)
        if self.row is not None:
            bits.append(_("row %(row)s", row=self.row))
        if self.column:
            bits.append(_("column '%(column)s'", column=self.column) if "'" not in self.column
                        else _("column %(column)r", column=self.column))
        if self.part:
            bits.append(self.part)
        return _(", ").join(bits)


@dataclass(frozen=True)
class Problem:
    """One finding of a check: an error stops the batch, a warning does not."""

    severity: str            # "error" or "warning"
    code: str                # stable, e.g. "missing_name"
    message: str             # what is wrong
    where: Where = Where()
    hint: str = ""           # how to fix it

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def __str__(self) -> str:
        where = str(self.where)
        text = _("%(where)s: %(message)s", where=where, message=self.message) if where \
            else self.message
        if self.hint:
            text += _(" (%(hint)s)", hint=self.hint)
        return text


def error(code: str, message: str, where: Where = Where(), hint: str = "") -> Problem:
    return Problem("error", code, message, where, hint)


def warning(code: str, message: str, where: Where = Where(), hint: str = "") -> Problem:
    return Problem("warning", code, message, where, hint)


_URL_PASSWORD = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.\-]*:/*[^\s:/@'\"]*:)[^\s'\"]*(@)")
_KEY_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('[^']*'|\"[^\"]*\"|[^\s'\"&]+)", re.I)


def mask_secrets(text: str) -> str:
    """``text`` with the password of any database URL (``postgresql://ann:***@host/db``)
    or ``password=...`` setting masked: for messages, logs and start-up lines."""
    if "@" in text:
        text = _URL_PASSWORD.sub(r"\1***\2", text)
    if "assword" in text or "ASSWORD" in text:
        text = _KEY_PASSWORD.sub(r"\1***", text)
    return text


class LetterpressError(Exception):
    """Base of every error a user can cause. ``code`` is stable; ``str()`` is the message."""

    code = "error"

    def __init__(self, message: str, *, code: Optional[str] = None,
                 where: Optional[Where] = None, hint: str = "") -> None:
        message = mask_secrets(message)
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.where = where or Where()
        self.hint = hint

    def __reduce__(self):
        """The error as raised, sent back from a process of its own (whatever the
        subclass's own arguments are)."""
        return (_error_from, (type(self), self.args, dict(self.__dict__)))

    @property
    def exit_status(self) -> ExitStatus:
        """From the catalogue: ``PARTIAL`` when the rest of the work was done, else ``ERROR``."""
        return exit_status_of(self.code)

    def __str__(self) -> str:
        where = str(self.where)
        text = _("%(where)s: %(message)s", where=where, message=self.message) if where \
            else self.message
        if self.hint:
            text += "\n  " + _("How to fix: %(hint)s", hint=self.hint)
        return text


def _error_from(cls, args: tuple, state: dict) -> "LetterpressError":
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class InputError(LetterpressError):
    """A recipient list, template or config file that cannot be used."""

    code = "bad_input"


class ConfigError(LetterpressError):
    code = "bad_config"


class TemplateProblemError(LetterpressError):
    """A Word template that cannot be rendered."""

    code = "bad_template"


class LedgerError(LetterpressError):
    code = "ledger_error"


class RecordError(LedgerError):
    """An event that cannot be recorded (or undone). ``code`` says why."""

    code = "record_error"


class BadgeRefused(RecordError):
    """A badge token the ledger does not accept (unknown, revoked, off the list, purged
    batch): code ``not_authorised``, as for a code of another batch, but about who asks."""

    code = "not_authorised"


class DiskFullError(LetterpressError):
    """The disk (or the user's quota) holding an output folder has no room for what is written."""

    code = "disk_full"


class MissingToolError(LetterpressError):
    """An outside program (LibreOffice, ...) that a feature needs is not installed."""

    code = "missing_tool"


class CheckFailed(LetterpressError):
    """The check found errors; nothing was written. ``problems`` holds them all, warnings too."""

    code = "check_failed"

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = list(problems)
        errors = [p for p in self.problems if p.is_error]
        super().__init__(
            ngettext("%(num)d error found; nothing was written.",
                     "%(num)d errors found; nothing was written.", len(errors)),
            hint=_("fix the rows and template places listed above, then run the command again"),
        )


if __name__ == "__main__":
    print(catalogue_table(), end="")
