"""Delivery order: the one order every document of a batch follows.

By volunteer (in order of first appearance in the list), then compound,
building, unit and room in natural order (``2栋`` before ``10栋``).
Households without a volunteer come last; ties keep list order.
"""
from __future__ import annotations

import functools
import re
import unicodedata
from typing import Dict, Iterable, List, Tuple

from letterpress.models import Recipient

_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5,
              "六": 6, "七": 7, "八": 8, "九": 9}
# A Chinese numeral counts as a number before a building/unit/room word or at the end:
# 三栋, 十二单元; but not in a name such as 九天公寓.
_CN_NUMBER = re.compile(r"[零〇一二两三四五六七八九十百]+(?=栋|幢|座|号|楼|单元|门|室|层|$)")
_CHUNK = re.compile(r"\d+|\D+")


def _chinese_number(text: str) -> int:
    """Value of a Chinese numeral up to the hundreds: 十二 -> 12, 一百零五 -> 105."""
    if "十" not in text and "百" not in text:      # digit by digit: 二〇一 -> 201
        return int("".join(str(_CN_DIGITS[ch]) for ch in text))
    total, digit = 0, 0
    for ch in text:
        if ch in "十百":
            total += (digit or 1) * (10 if ch == "十" else 100)
            digit = 0
        else:
            digit = _CN_DIGITS[ch]                   # 零 is a placeholder: 一百零五
    return total + digit


@functools.lru_cache(maxsize=8192)
def natural_key(text: str) -> Tuple[tuple, ...]:
    """A sort key that compares numbers inside text as numbers.

    ``natural_key("2栋") < natural_key("10栋")``, ``"3单元" < "12单元"``,
    ``"三单元" < "十二单元"``; full-width digits count as digits; an empty
    value sorts first.
    """
    text = unicodedata.normalize("NFKC", text or "").strip()
    text = _CN_NUMBER.sub(lambda m: str(_chinese_number(m.group())), text)
    key: List[tuple] = []
    for chunk in _CHUNK.findall(text):
        if chunk.isdigit():
            key.append((0, int(chunk), len(chunk)))
        else:
            key.append((1, chunk.casefold()))
    return tuple(key)


def volunteer_order(recipients: Iterable[Recipient]) -> List[str]:
    """Volunteer names in order of first appearance in the list (no blank name)."""
    seen: Dict[str, None] = {}
    for r in recipients:
        if r.volunteer and r.volunteer not in seen:
            seen[r.volunteer] = None
    return list(seen)


def delivery_order(recipients: Iterable[Recipient]) -> List[Recipient]:
    """The recipients in delivery order (a new list; the input is not changed)."""
    items = list(recipients)
    rank = {name: i for i, name in enumerate(volunteer_order(items))}
    last = len(rank)

    def key(r: Recipient):
        return (rank.get(r.volunteer, last) if r.volunteer else last,
                natural_key(r.compound), natural_key(r.building),
                natural_key(r.unit), natural_key(r.room))

    return sorted(items, key=key)
