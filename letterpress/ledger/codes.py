"""Household codes and the URLs built from them.

A code is 10 random symbols (50 bits) from Crockford's 32-symbol alphabet
plus one check symbol over the same alphabet, printed in groups::

    K7Q2M-9XD3T-H

Every symbol is QR-alphanumeric, so ``{BASE_URL}/H/{CODE}`` in upper case is
encoded in the QR code's compact alphanumeric mode.

The check symbol
----------------
Symbols are read as elements of the field GF(32) (``x^5 + x^2 + 1``); the check
symbol makes ``sum(a^i * s_i) == 0`` where ``s_0`` is the check symbol, ``s_1``
the last data symbol and so on, and ``a`` is a primitive element. Because
every weight ``a^i`` is non-zero and ``a^i != a^j`` for ``i != j`` (``a`` has
order 31 > 11), this catches every single wrong symbol and every swap of two
symbols, adjacent or not. (Luhn mod 32, the other obvious choice, misses the
swap of ``0`` and ``Z``: both map to themselves when doubled.)

Reading codes is forgiving in the ways Crockford intends: case is ignored,
dashes and spaces are ignored, ``I`` and ``L`` read as ``1`` and ``O`` as ``0``.
"""
from __future__ import annotations

import re
import secrets
from typing import List

from letterpress.errors import InputError, RecordError
from letterpress.i18n import N_, _

#: Crockford's base-32 symbols (no I, L, O, U).
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
#: Random symbols in a code (50 bits).
DATA_LENGTH = 10
#: Symbols in a code, check symbol included.
LENGTH = DATA_LENGTH + 1

_VALUE = {ch: i for i, ch in enumerate(ALPHABET)}
_VALUE.update({"I": 1, "L": 1, "O": 0})
_IGNORED = re.compile(r"[\s\-\u2010-\u2015\u2212]+")


def _gf32_tables() -> tuple:
    """Exponent and logarithm tables of GF(32) with the primitive polynomial x^5 + x^2 + 1."""
    exp: List[int] = [0] * 62
    log: List[int] = [0] * 32
    value = 1
    for power in range(31):
        exp[power] = exp[power + 31] = value
        log[value] = power
        value <<= 1
        if value & 0x20:
            value ^= 0b100101
    return exp, log


_EXP, _LOG = _gf32_tables()


def _weighted_sum(values: List[int]) -> int:
    """``sum(a^i * v)`` over GF(32), with ``i = 0`` for the LAST value."""
    total = 0
    for power, value in enumerate(reversed(values)):
        if value:
            total ^= _EXP[_LOG[value] + power]
    return total


def check_symbol(data: str) -> str:
    """The check symbol for 10 data symbols (canonical, upper case)."""
    values = [_VALUE[ch] for ch in data]
    # With a 0 appended as the check, the sum must become 0: the check equals
    # the weighted sum of the data symbols with weights a^1 .. a^10.
    return ALPHABET[_weighted_sum(values + [0])]


class CodeError(InputError, ValueError):
    """Text that is not a valid household code. ``str()`` says why in a few words."""

    code = "bad_code"

    def __init__(self, message: str, *, code: str = "bad_code") -> None:
        super().__init__(message, code=code,
                         hint=_("a code has 11 symbols such as K7Q2M-9XD3T-H; check it against "
                                "the slip and type it again"))

    def __str__(self) -> str:
        return self.message


def new_canonical() -> str:
    """A fresh random code in canonical form (11 symbols, the last the check symbol).

    One draw of 50 random bits from the system's generator, five bits a symbol
    (the alphabet has 32): each symbol uniform and independent, as ten draws
    would give, for a tenth of the system calls."""
    value = secrets.randbits(5 * DATA_LENGTH)
    data = "".join([ALPHABET[(value >> shift) & 31] for shift in range(0, 5 * DATA_LENGTH, 5)])
    return data + check_symbol(data)


def new_code() -> str:
    """A fresh random code in printed form, e.g. ``K7Q2M-9XD3T-H``."""
    code = new_canonical()
    return f"{code[:5]}-{code[5:10]}-{code[10:]}"


def normalise(text: str) -> str:
    """The canonical 11-symbol form of a typed or scanned code.

    Raises :class:`CodeError` (a ``ValueError``) for a wrong length, a symbol
    outside the alphabet, or a wrong check symbol.
    """
    compact = _IGNORED.sub("", str(text)).upper()
    if not compact:
        raise CodeError(_("no code given"), code="code_empty")
    if len(compact) != LENGTH:
        raise CodeError(_("a code has %(length)s symbols, this has %(count)s",
                          length=LENGTH, count=len(compact)),
                        code="code_length")
    bad = sorted({ch for ch in compact if ch not in _VALUE})
    if bad:
        raise CodeError(_("not a code symbol: %(join)s", join=' '.join(bad)), code="code_symbol")
    canonical = "".join(ALPHABET[_VALUE[ch]] for ch in compact)
    if _weighted_sum([_VALUE[ch] for ch in canonical]) != 0:
        raise CodeError(_("check symbol does not match (a symbol is mistyped)"),
                        code="code_check")
    return canonical


#: How to fix a code that is not one of the ledger's.
CODE_HINT = N_("check the code printed under the QR code and type it again; its last symbol "
             "catches most typing mistakes")


def canonical(code: str) -> str:
    """:func:`normalise`, or a :class:`RecordError` ``unknown_code`` saying how to fix it."""
    try:
        return normalise(code)
    except ValueError as exc:
        raise RecordError(_("%(strip)r is not a household code: %(exc)s",
                            strip=str(code).strip(), exc=exc),
                          code="unknown_code", hint=_(CODE_HINT)) from None


def is_valid(text: str) -> bool:
    """True when ``text`` reads as a valid code."""
    try:
        normalise(text)
    except CodeError:
        return False
    return True


def printed(code: str) -> str:
    """The printed form ``XXXXX-XXXXX-X`` of a code (any accepted form in)."""
    return printed_canonical(normalise(code))


def printed_canonical(c: str) -> str:
    """:func:`printed` for a code already canonical (as the ledger keeps it): not checked."""
    return f"{c[:5]}-{c[5:10]}-{c[10]}"


def compact(code: str) -> str:
    """The canonical form without dashes (an alias of :func:`normalise`)."""
    return normalise(code)


def url_for(base_url: str, code: str) -> str:
    """The QR payload ``{BASE_URL}/H/{CODE}``, all in upper case.

    Upper case keeps the payload QR-alphanumeric (scheme and host are
    case-insensitive; the server matches ``/H/`` in any case).
    """
    return url_for_canonical(base_url, normalise(code))


def url_for_canonical(base_url: str, c: str) -> str:
    """:func:`url_for` for a code already canonical (as the ledger keeps it): not checked."""
    return f"{base_url.rstrip('/')}/H/{c}".upper()


def badge_url(base_url: str, token: str) -> str:
    """A volunteer's login link ``{BASE_URL}/V/{TOKEN}``; the token keeps its case."""
    return f"{base_url.rstrip('/')}/V/{token}"


_URL_CODE = re.compile(r"/H/([^/?#]+)/?(?:[?#].*)?$", re.IGNORECASE)


def code_from_url_or_text(text: str) -> str:
    """The canonical code in a scanned URL (any base, any case), a ``/H/...`` path or a bare code.

    Raises :class:`CodeError` when there is no valid code in ``text``.
    """
    value = str(text).strip()
    match = _URL_CODE.search(value)
    if match:
        return normalise(match.group(1))
    if "/" in value or ":" in value:
        raise CodeError(_("this link is not a household link (no /H/ code in it)"),
                        code="code_not_household_url")
    return normalise(value)
