"""Showing ledger data on pages: masked names for strangers, local times, bar widths."""
from __future__ import annotations

import datetime as _dt
import re
import unicodedata
from typing import Optional


def _is_latin(ch: str) -> bool:
    return ch.isascii() or unicodedata.name(ch, "").startswith("LATIN")


def mask_name(name: str) -> str:
    """A name a stranger may see: ``王秀英`` -> ``王*英``, ``李明`` -> ``李*``, ``Mary Wong`` -> ``M.``."""
    name = " ".join(str(name or "").split())
    if not name:
        return ""
    if _is_latin(name[0]):
        return name[0].upper() + "."
    if len(name) == 1:
        return "*"
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def masked_place(compound: str, building: str) -> str:
    """Compound and building only (never unit or room)."""
    return " ".join(p for p in (str(compound or "").strip(), str(building or "").strip()) if p)


def local_time(value: Optional[_dt.datetime], today: Optional[_dt.date] = None) -> str:
    """``10:32`` today, ``02-23 10:32`` another day, in this machine's time zone."""
    if value is None:
        return ""
    local = value.astimezone() if value.tzinfo else value
    today = today or _dt.datetime.now().astimezone().date()
    if local.date() == today:
        return local.strftime("%H:%M")
    if local.year == today.year:
        return local.strftime("%m-%d %H:%M")
    return local.strftime("%Y-%m-%d %H:%M")


def percent(part: int, whole: int) -> int:
    """A bar width in whole percent (0-100) for the ``w0`` ... ``w100`` CSS classes."""
    if whole <= 0:
        return 0
    return max(0, min(100, round(100 * part / whole)))


def bar_widths(delivered: int, failed: int, outstanding: int) -> tuple:
    """Widths of the three bar segments, adding up to 100 when there is anything."""
    counts = (delivered, failed, outstanding)
    total = sum(counts)
    if total <= 0:
        return (0, 0, 0)
    exact = [100 * c / total for c in counts]
    widths = [int(x) for x in exact]
    # Largest remainders get the missing percent points, so the bar is always full.
    order = sorted(range(3), key=lambda i: exact[i] - widths[i], reverse=True)
    for i in order[:100 - sum(widths)]:
        widths[i] += 1
    return tuple(widths)


_SPLIT = re.compile(r"[/,;，；、]|\s{2,}")


def phones(text: str) -> list:
    """``[(shown, dialled)]`` for each number in a phone field (``tel:`` needs digits and +)."""
    out = []
    for part in _SPLIT.split(str(text or "")):
        shown = part.strip()
        dial = "".join(ch for ch in shown if ch.isdigit() or ch == "+")
        if sum(ch.isdigit() for ch in dial) >= 3:
            out.append((shown, dial))
    return out
