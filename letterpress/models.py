"""Frozen dataclasses that every stage shares.

Data flows one way: ``recipients`` makes :class:`Recipient` records, ``batch``
numbers them into :class:`Household` records (and the ledger gives each a
code), and ``letters``, ``slips`` and the ledger consume those.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field, fields
from typing import Callable, Dict, Iterator, Mapping, Optional, Tuple

#: Canonical recipient fields, in the order a manifest or report lists them.
CANONICAL_FIELDS: Tuple[str, ...] = (
    "id", "name", "honorific", "address", "compound", "building", "unit", "room",
    "phone", "category", "grid", "volunteer", "package", "notes",
)

#: A progress callback: ``progress(stage, done, total)``, e.g. ``("letters", 40, 210)``.
#: Library functions call it; the CLI draws a bar, the server and tests may ignore it.
Progress = Callable[[str, int, int], None]

#: Derived household states.
STATES: Tuple[str, ...] = ("outstanding", "delivered", "failed", "withdrawn")



class Columns(Mapping[str, str]):
    """A row's values under their headers, read-only and small: the headers' positions are
    shared by every row of a list, a row keeps only its values (a district list holds
    100,000 of them)."""

    __slots__ = ("_positions", "_values")

    def __init__(self, positions: Dict[str, int], values: Tuple[str, ...]) -> None:
        self._positions, self._values = positions, values

    @classmethod
    def of(cls, values: Mapping[str, str]) -> "Columns":
        return cls({h: i for i, h in enumerate(values)}, tuple(values.values()))

    def __getitem__(self, header: str) -> str:
        return self._values[self._positions[header]]

    def __iter__(self) -> Iterator[str]:
        return iter(self._positions)

    def __len__(self) -> int:
        return len(self._positions)

    def __repr__(self) -> str:
        return repr(dict(self))

    def __reduce__(self):
        return (Columns, (self._positions, self._values))


def rebuilt(cls, values: tuple):
    """A Recipient or Household from its field values, as fast as unpickling allows (a
    district's households are unpickled block by block, again at every stage)."""
    setters = _SETTERS.get(cls)
    if setters is None:
        setters = _SETTERS[cls] = tuple(getattr(cls, f.name).__set__ for f in fields(cls))
    obj = object.__new__(cls)
    for setter, value in zip(setters, values):
        setter(obj, value)
    return obj


_SETTERS: Dict[type, tuple] = {}


@dataclass(frozen=True, slots=True)
class Recipient:
    """One row of the recipient list, cleaned.

    ``row`` is the row number as Excel shows it (header = row 1). ``columns``
    holds every column of the row under its original header (unknown columns
    included), in list order.
    """

    row: int
    id: str
    name: str = ""
    honorific: str = ""
    address: str = ""
    compound: str = ""
    building: str = ""
    unit: str = ""
    room: str = ""
    phone: str = ""
    category: str = ""
    grid: str = ""
    volunteer: str = ""
    package: str = ""
    notes: str = ""
    columns: Mapping[str, str] = field(default_factory=dict, compare=False)
    id_generated: bool = False

    def __reduce__(self):
        return (rebuilt, (Recipient, tuple(getattr(self, f) for f in _RECIPIENT_FIELDS)))

    def fields(self) -> dict:
        """Every field by its original header and by its canonical name (canonical wins)."""
        out = dict(self.columns)
        for name in CANONICAL_FIELDS:
            out[name] = getattr(self, name)
        return out


@dataclass(frozen=True, slots=True)
class Household:
    """A recipient with its place in the delivery order and, once registered, its code."""

    seq: int
    recipient: Recipient
    code: str = ""      # printed form, e.g. "K7Q2M-9XD3T-H"
    url: str = ""       # "{BASE_URL}/H/{CODE}", upper case

    @property
    def id(self) -> str:
        return self.recipient.id

    @property
    def name(self) -> str:
        return self.recipient.name

    @property
    def address(self) -> str:
        return self.recipient.address

    @property
    def volunteer(self) -> str:
        return self.recipient.volunteer

    def with_code(self, code: str, url: str) -> "Household":
        return rebuilt(Household, (self.seq, self.recipient, code, url))

    def __reduce__(self):
        return (rebuilt, (Household, (self.seq, self.recipient, self.code, self.url)))


_RECIPIENT_FIELDS = tuple(f.name for f in fields(Recipient))


@dataclass(frozen=True)
class Volunteer:
    """A volunteer of a batch, numbered in order of first appearance in the list."""

    index: int
    name: str           # "" for the households nobody is assigned to
    token: str = ""
    url: str = ""

    @property
    def label(self) -> str:
        return self.name or "unassigned"


@dataclass(frozen=True)
class BatchInfo:
    """What a batch is called and by whom it is sent."""

    title: str
    org: str = ""
    date: Optional[_dt.date] = None
    lang: str = "zh"


@dataclass(frozen=True)
class Event:
    """One recorded outcome (append-only in the ledger)."""

    code: str
    outcome: str
    volunteer: str
    at: _dt.datetime
    nonce: str = ""
    note: str = ""
