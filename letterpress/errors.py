"""Errors and problems, each with a stable code.

The library never prints and never exits: it raises a :class:`LetterpressError`
(or collects :class:`Problem` records and raises :class:`CheckFailed`), and
``cli.py`` turns those into messages and exit statuses.
"""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Iterable, Optional


class ExitStatus(enum.IntEnum):
    """Exit statuses of the ``letterpress`` command, in one place."""

    OK = 0
    ERROR = 1          # a user mistake or a failed check: the message says what to fix
    USAGE = 2          # wrong options (Click's own status)
    PARTIAL = 3        # the batch completed but some documents failed (named in the output)
    INTERRUPTED = 130


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
            bits.append(f"row {self.row}")
        if self.column:
            bits.append(f"column {self.column!r}")
        if self.part:
            bits.append(self.part)
        return ", ".join(bits)


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
        text = f"{where}: {self.message}" if where else self.message
        if self.hint:
            text += f" ({self.hint})"
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
    exit_status = ExitStatus.ERROR

    def __init__(self, message: str, *, code: Optional[str] = None,
                 where: Optional[Where] = None, hint: str = "") -> None:
        message = mask_secrets(message)
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.where = where or Where()
        self.hint = hint

    def __str__(self) -> str:
        where = str(self.where)
        text = f"{where}: {self.message}" if where else self.message
        if self.hint:
            text += f"\n  How to fix: {self.hint}"
        return text


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
            f"{len(errors)} error(s) found; nothing was written.",
            hint="fix the rows and template places listed above, then run the command again",
        )
