"""Checks of single cell values in a recipient list: phones, summary rows; row lists as text."""
from __future__ import annotations

import re
import unicodedata
from typing import List, NamedTuple, Optional, Sequence

from letterpress.i18n import N_, _

_SCIENTIFIC = re.compile(r"^[+-]?\d+(?:[.,]\d+)?[eE][+-]?\d+$")
_MOBILE = re.compile(r"1[3-9]\d{9}")
_LANDLINE = re.compile(r"(?:0\d{2,3})?\d{7,8}")
# Several numbers in one cell: 13812345678/027-87654321, 138...、139..., ... 或 ...
_NUMBER_SEPARATORS = re.compile(r"[/、,;|]|或|\s{2,}")
_INSIDE_NUMBER = re.compile(r"[\s\-()]")
_COUNTRY = re.compile(r"^(?:\+|00)86")

_SUMMARY = re.compile(
    r"^(?:合\s*计|总\s*计|小\s*计|共\s*计|总\s*数|总\s*共)"
    r"|^(?:grand\s*total|sub\s*total|total|sum)\s*[:：]?\s*[\d.,]*\s*$",
    re.IGNORECASE)

PHONE_HINT = N_("write a mobile number (11 digits starting with 13 to 19) or a landline with its "
              "area code, such as 027-87654321; if a leading 0 went missing, format the column "
              "as Text and type the number again")


def _is_phone_number(text: str) -> bool:
    text = text.strip()
    international = bool(_COUNTRY.match(text))
    digits = _INSIDE_NUMBER.sub("", _COUNTRY.sub("", text))
    if not re.fullmatch(r"[0-9]+", digits):
        return False
    if _MOBILE.fullmatch(digits):
        return True
    if international and not digits.startswith("0"):
        digits = "0" + digits        # +86 27 8765 4321: the area code loses its 0
    return bool(_LANDLINE.fullmatch(digits))


class Finding(NamedTuple):
    """A problem with one cell: its code (see letterpress.errors.CATALOGUE), message and hint."""

    code: str
    message: str
    hint: str


def check_phone(value: str) -> Optional[Finding]:
    """``None`` for a good phone cell, else ``(code, message, hint)``.

    A cell may hold several numbers separated by ``/``, ``、``, ``,`` or ``;``.
    Spaces, dashes and brackets inside a number and a ``+86`` prefix are allowed.
    """
    text = unicodedata.normalize("NFKC", value).strip()
    if _SCIENTIFIC.match(text.replace(" ", "")):
        return Finding(
            code="phone_scientific",
            message=_("the phone %(value)r is in scientific notation: Excel has cut the number "
                      "short", value=value),
            hint=_("the lost digits cannot be recovered from this file; copy the numbers from "
                   "the original workbook, or format the column as Text and type them again"))
    parts = [p for p in _NUMBER_SEPARATORS.split(text) if p.strip()]
    if parts and all(_is_phone_number(p) for p in parts):
        return None
    return Finding(code="bad_phone", hint=_(PHONE_HINT),
                   message=_("the phone %(value)r is neither a mobile nor a landline number",
                             value=value))


def is_summary_row(value: str) -> bool:
    """True for the first cell of a totals row: ``合计``, ``总计：40``, ``Total``, ``Sum: 40``."""
    return bool(_SUMMARY.match(unicodedata.normalize("NFKC", value or "").strip()))


def rows_text(rows: Sequence[int]) -> str:
    """Row numbers for a message: ``row 4``, ``rows 4, 9 and 12``, ``rows 4-7 and 9``
    (three or more rows in a run become a range)."""
    rows = sorted(set(rows))
    spans: List[str] = []
    start = 0
    for i in range(1, len(rows) + 1):
        if i == len(rows) or rows[i] != rows[i - 1] + 1:
            run = rows[start:i]
            spans += [f"{run[0]}-{run[-1]}"] if len(run) > 2 else [str(n) for n in run]
            start = i
    if len(rows) == 1:
        return _("row %(row)s", row=rows[0])
    if len(spans) == 1:
        return _("rows %(rows)s", rows=spans[0])
    return _("rows %(rows)s and %(last)s", rows=_(", ").join(spans[:-1]), last=spans[-1])
