"""Recipient lists: a CSV or XLSX file in, cleaned :class:`Recipient` records and problems out.

>>> rl = load("recipients.xlsx")                     # doctest: +SKIP
>>> for problem in rl.problems:                      # doctest: +SKIP
...     print(problem)
recipients.xlsx, row 7, column '姓名': the name is empty (fill in the household's name, ...)

Headers in Chinese or English map to the canonical fields of
:data:`letterpress.models.CANONICAL_FIELDS` (see :data:`HEADER_ALIASES`);
every column also stays reachable under its original header. Reading never
stops at the first mistake: every row is checked and all problems are
returned together in :attr:`RecipientList.problems`. Only a file that cannot
be read at all raises :class:`~letterpress.errors.InputError`.
"""
from __future__ import annotations

import hashlib
import itertools
import re
import unicodedata
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from letterpress.errors import ConfigError, Problem, Where, error, warning
from letterpress.i18n import _, ngettext
from letterpress.models import CANONICAL_FIELDS, Columns, Recipient
from letterpress.recipients import read as sheets
from letterpress.recipients.ordering import delivery_order, natural_key, volunteer_order
from letterpress.recipients.rowchecks import check_phone, is_summary_row, rows_text

__all__ = ["load", "RecipientList", "delivery_order", "natural_key", "volunteer_order",
           "HEADER_ALIASES", "header_key", "generated_id"]

#: Header names recognised for each canonical field (besides the field's own name).
#: Matching ignores case, spaces, underscores, dashes, dots, colons and a ``*``.
HEADER_ALIASES: Mapping[str, Tuple[str, ...]] = MappingProxyType({
    "id": ("编号", "序号", "户号", "ID", "No", "Number", "Household ID", "Ref", "#"),
    "name": ("姓名", "名字", "户主姓名", "Name", "Full name", "Recipient", "Resident"),
    "honorific": ("称呼", "尊称", "Honorific", "Title", "Salutation"),
    "address": ("地址", "住址", "家庭住址", "详细地址", "居住地址", "Address", "Home address",
                "Street address"),
    "compound": ("小区", "小区名称", "Compound", "Estate", "Housing estate"),
    "building": ("楼栋", "栋", "楼号", "栋号", "Building", "Block", "Bldg"),
    "unit": ("单元", "单元号", "Unit", "Entrance", "Stairwell"),
    "room": ("房号", "门牌", "门牌号", "房间号", "室", "Room", "Flat", "Apartment", "Apt",
             "Room number", "Door"),
    "phone": ("电话", "联系电话", "手机", "手机号", "手机号码", "电话号码", "联系方式",
              "Phone", "Telephone", "Tel", "Mobile", "Mobile phone", "Phone number", "Contact"),
    "category": ("类别", "人员类别", "类型", "Category", "Type", "Group"),
    "grid": ("网格", "所属网格", "Grid"),
    "volunteer": ("志愿者", "配送人", "送达人", "配送志愿者", "Volunteer", "Deliverer",
                  "Courier", "Delivered by"),
    "package": ("物资", "慰问品", "慰问物资", "Package", "Items", "Supplies", "Goods"),
    "notes": ("备注", "说明", "Notes", "Note", "Remarks", "Comment", "Comments"),
})

#: Rows above the header that are searched for it (a title row often comes first).
HEADER_SEARCH_ROWS = 20
_ADDRESS_PARTS = ("compound", "building", "unit", "room")
_IGNORED_IN_HEADERS = re.compile(r"[\s_\-.:：*]+")
_ZERO_WIDTH = "\u200b\ufeff"
_PLAIN_MOBILE = re.compile(r"1[3-9][0-9]{9}")   # needs no closer look: check_phone accepts it


@dataclass(frozen=True)
class RecipientList:
    """What :func:`load` found in a recipient list.

    ``recipients`` are in list order; ``headers`` are the original headers in
    column order; ``mapping`` gives, for each canonical field found, the
    original header it came from; ``problems`` holds every error and warning.
    """

    source: str
    recipients: List[Recipient] = field(default_factory=list)
    headers: List[str] = field(default_factory=list)
    mapping: Dict[str, str] = field(default_factory=dict)
    problems: List[Problem] = field(default_factory=list)
    encoding: Optional[str] = None      # the encoding a CSV file was read with
    sheet: Optional[str] = None         # the worksheet a workbook was read from
    header_row: Optional[int] = None    # the row number of the header, as Excel shows it

    @property
    def errors(self) -> List[Problem]:
        return [p for p in self.problems if p.is_error]

    @property
    def warnings(self) -> List[Problem]:
        return [p for p in self.problems if not p.is_error]

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings allowed)."""
        return not self.errors

    def __len__(self) -> int:
        return len(self.recipients)

    def __iter__(self) -> Iterator[Recipient]:
        return iter(self.recipients)


def header_key(text: str) -> str:
    """A header reduced for matching: ``" Full_Name: "`` -> ``"fullname"``."""
    text = unicodedata.normalize("NFKC", text or "").casefold()
    return _IGNORED_IN_HEADERS.sub("", text)


def clean(text: str) -> str:
    """A cell value with surrounding spaces (also full-width and zero-width ones) removed."""
    text = (text or "").strip()
    if text and (text[0] in _ZERO_WIDTH or text[-1] in _ZERO_WIDTH):
        text = text.strip(_ZERO_WIDTH).strip()
    return text


def generated_id(name: str, address: str) -> str:
    """A stable id from name and address: ``h-`` and 10 hex digits.

    Spaces and letter case do not count, so the same household gets the
    same id when the list is typed again.
    """
    def norm(text: str) -> str:
        return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)).casefold()

    digest = hashlib.sha256(f"{norm(name)}|{norm(address)}".encode("utf-8")).hexdigest()
    return "h-" + digest[:10]


AliasMap = Mapping[str, Union[str, Sequence[str]]]


def _alias_table(aliases: Optional[AliasMap]) -> Dict[str, Tuple[int, str]]:
    """header key -> (priority, field); aliases from the config (priority 0) win."""
    table: Dict[str, Tuple[int, str]] = {}
    for name, names in HEADER_ALIASES.items():
        for alias in (name,) + tuple(names):
            table.setdefault(header_key(alias), (1, name))
    for name, given in (aliases or {}).items():
        if name not in CANONICAL_FIELDS:
            raise ConfigError(_("%(name)r is not a recipient field", name=name),
                              hint=_("use one of: %(fields)s",
                                     fields=", ".join(sorted(CANONICAL_FIELDS))))
        for alias in ([given] if isinstance(given, str) else given):
            if header_key(alias):
                table[header_key(alias)] = (0, name)
    return table


def _map_headers(headers: Sequence[str], table, where: Where) -> Tuple[Dict[str, str], List[Problem]]:
    candidates: Dict[str, List[Tuple[int, int, str]]] = {}
    for index, header in enumerate(headers):
        if header and header_key(header) in table:
            priority, name = table[header_key(header)]
            candidates.setdefault(name, []).append((priority, index, header))
    mapping, problems = {}, []
    for name in CANONICAL_FIELDS:
        found = sorted(candidates.get(name, []))
        if not found:
            continue
        mapping[name] = found[0][2]
        if len(found) > 1:
            others = ", ".join(repr(h) for _, _, h in found[1:])
            problems.append(warning(
                "ambiguous_column",
                _("several columns look like the %(name)s field; using %(found)r, not "
                  "%(others)s", name=name, found=found[0][2], others=others),
                Where(file=where.file, row=where.row, column=found[0][2]),
                hint=_("rename the columns that are not meant as %(name)s, or name the right "
                       "one under [columns] in letterpress.toml", name=name)))
    return mapping, problems


def load(path, *, encoding: Optional[str] = None, sheet: Optional[str] = None,
         aliases: Optional[AliasMap] = None) -> RecipientList:
    """Read and check a recipient list (``.csv``, ``.tsv``, ``.txt``, ``.xlsx``, ``.xlsm``).

    ``encoding`` overrides the detection for text files; ``sheet`` names the
    worksheet of a workbook (default: the first); ``aliases`` maps canonical
    fields to extra header names (the ``[columns]`` table of the config).
    Raises :class:`~letterpress.errors.InputError` when the file cannot be
    read; everything else is reported in the returned list's ``problems``.
    """
    source = str(path)
    table = _alias_table(aliases)

    def score(cells: Sequence[str]) -> int:
        return sum(1 for c in cells if header_key(c) in table)

    data = sheets.read(path, encoding=encoding, sheet=sheet, header_score=score)
    found: Dict[str, Any] = dict(source=source, encoding=data.encoding, sheet=data.sheet)
    rows = iter(data.rows)      # for a text file, parsed as it is walked: walked once
    head = list(itertools.islice(rows, HEADER_SEARCH_ROWS))
    if not head:
        return RecipientList(**found, problems=[error(
            "empty_list", _("the file is empty"), Where(file=source),
            hint=_("put a header row (姓名, 地址, ...) and one row per household in it"))])

    header_at = _find_header(head, table, score)
    header_row, raw_headers = head[header_at]
    headers = [clean(h) for h in raw_headers]
    found.update(headers=[h for h in headers if h], header_row=header_row)
    head_where = Where(file=source, row=header_row)
    mapping, problems = _map_headers(headers, table, head_where)
    if "name" not in mapping:
        listed = ", ".join(repr(h) for h in found["headers"]) or "none"
        extra = (aliases or {}).get("name", ())
        extra = (extra,) if isinstance(extra, str) else tuple(extra)
        expected = ", ".join(dict.fromkeys(("name",) + HEADER_ALIASES["name"] + extra))
        return RecipientList(**found, problems=[error(
            "no_header",
            _("no column for the household's name was found; the headers are: %(listed)s",
              listed=listed),
            head_where,
            hint=_("the header row needs a name column called one of: %(expected)s (or add "
                   "your header under [columns] name = [...] in letterpress.toml)",
                   expected=expected))])
    problems.extend(_duplicate_headers(headers, head_where))
    layout = _Layout(headers)
    recipients: List[Recipient] = []
    for number, cells in itertools.chain(head[header_at + 1:], rows):
        made = _make_recipient(number, cells, layout, mapping, source, problems)
        if made is not None:
            recipients.append(made)
    problems.extend(_list_problems(recipients, mapping, source))
    problems.sort(key=lambda p: (p.where.row is None, p.where.row or 0))
    return RecipientList(**found, recipients=recipients, mapping=mapping, problems=problems)


def _find_header(rows, table, score) -> int:
    """Index (in ``rows``, the first rows of the sheet) of the header row: the first row with
    a name column (a title may be above it)."""
    best, best_score = 0, -1
    for i, (_row, cells) in enumerate(rows):
        if any(table.get(header_key(c), (0, ""))[1] == "name" for c in cells):
            return i
        if score(cells) > best_score:
            best, best_score = i, score(cells)
    return best


def _duplicate_headers(headers: Sequence[str], where: Where) -> List[Problem]:
    seen: Dict[str, int] = {}
    problems = []
    for index, header in enumerate(headers):
        if not header:
            continue
        if header in seen:
            problems.append(error(
                "duplicate_header",
                _("the header %(header)r is used twice (columns %(column_letter)s and "
                  "%(column_letter2)s)",
                  header=header, column_letter=sheets.column_letter(seen[header]), column_letter2=sheets.column_letter(index)),
                Where(file=where.file, row=where.row, column=header),
                hint=_("give each column its own header; only the first is used")))
        else:
            seen[header] = index
    return problems


def compose_address(parts: Sequence[str]) -> str:
    """Compound, building, unit and room joined as written on a letter.

    Parts are joined directly (``沙湖小区`` ``3栋`` ``2单元`` ``401`` ->
    ``沙湖小区3栋2单元401``); two numbers meeting get a dash (``3``, ``2``,
    ``401`` -> ``3-2-401``) and two Latin words a space.
    """
    out = ""
    for part in (p for p in parts if p):
        if out:
            a, b = out[-1], part[0]
            if a.isdigit() and b.isdigit():
                out += "-"
            elif a.isascii() and b.isascii() and a.isalnum() and b.isalnum():
                out += " "
        out += part
    return out


class _Layout:
    """Where each column's value goes, worked out once for all the rows of a list."""

    def __init__(self, headers: Sequence[str]) -> None:
        self.headers, self.named = headers, [h for h in headers if h]
        self.blank = dict.fromkeys(self.named, "")      # every header, in column order
        firsts = {h: i for i, h in reversed(list(enumerate(headers))) if h}
        self.first = sorted((i, h) for h, i in firsts.items())   # each header's first column
        self.unnamed = [i for i, h in enumerate(headers) if not h]
        self.simple = len(self.first) == len(headers)   # every column named, no name twice
        self.positions = {h: i for i, h in enumerate(self.blank)}   # shared by every row
        self._seen: Dict[str, str] = {}

    def clean(self, text: str) -> str:
        """:func:`clean`, with one copy of each text the list repeats (compounds, buildings,
        volunteers...) instead of one a row. The table goes with the layout, after the
        list is read (``sys.intern``'s would stay as large as the largest list read)."""
        text = clean(text)
        return self._seen.setdefault(text, text)


def _make_recipient(number: int, cells: Sequence[str], layout: _Layout,
                    mapping: Mapping[str, str], source: str, problems: List[Problem]):
    """The :class:`Recipient` of one row, or None for a row that is not a household."""
    count, width = len(cells), len(layout.headers)
    if layout.simple and count == width:   # the usual row: one value a column
        values: Dict[str, str] = dict(zip(layout.named, map(layout.clean, cells)))
    else:
        values = dict(layout.blank)
        values.update((h, layout.clean(cells[i])) for i, h in layout.first if i < count)
    extras = [(sheets.column_letter(i), clean(cells[i]))
              for i in [*layout.unnamed, *range(width, count)] if i < count and clean(cells[i])]
    if extras:
        letters = ", ".join(letter for letter, _ in extras)
        texts = ", ".join(repr(text) for _, text in extras)
        problems.append(error(
            "extra_cells",
            _("the row has more cells than the header row: columns %(letters)s have no header "
              "but hold %(texts)s", letters=letters, texts=texts) if len(extras) > 1
            else _("the row has more cells than the header row: column %(letters)s has no "
                   "header but holds %(texts)s", letters=letters, texts=texts),
            Where(file=source, row=number, column=extras[0][0]),
            hint=_("give the column a header, or delete the value (often a stray comma or a "
                   "cell typed outside the table)")))
    first = next((h for h, v in values.items() if v), None)
    if first is None:
        return None
    total = next((h for h in (first, mapping["name"]) if is_summary_row(values[h])), None)
    if total is not None:
        problems.append(error(
            "summary_row", _("this looks like a summary row (%(values)r), not a household",
                             values=values[total]),
            Where(file=source, row=number, column=total),
            hint=_("delete the row; letterpress counts the households itself")))
        return None
    if [values[h] for h in layout.named] == layout.named:
        problems.append(error(
            "repeated_header", _("the header row is repeated here"),
            Where(file=source, row=number), hint=_("delete the row")))
        return None
    fields = dict.fromkeys(CANONICAL_FIELDS, "")
    for name, header in mapping.items():
        fields[name] = values[header]
    if not fields["address"]:
        fields["address"] = compose_address([fields[p] for p in _ADDRESS_PARTS])
    if fields["id"]:
        id_generated = False
    else:
        fields["id"] = generated_id(fields["name"], fields["address"])
        id_generated = True
    recipient = Recipient(row=number, columns=Columns(layout.positions, tuple(values.values())),
                          id_generated=id_generated, **fields)
    problems.extend(_row_problems(recipient, mapping, source))
    return recipient


def _row_problems(r: Recipient, mapping: Mapping[str, str], source: str) -> List[Problem]:
    out = []
    if not r.name:
        out.append(error(
            "missing_name", _("the name is empty"), Where(file=source, row=r.row, column=mapping["name"]),
            hint=_("fill in the household's name, or delete the row if it is not a household")))
    if not r.address:
        column = mapping.get("address") or next((mapping[p] for p in _ADDRESS_PARTS if p in mapping), None)
        if "address" in mapping or any(p in mapping for p in _ADDRESS_PARTS):
            msg = _("the address is empty")
            hint = _("fill in the address, or the compound, building, unit and room")
        else:
            msg = _("the list has no address column")
            hint = _("add a column 地址 (address), or columns 小区, 楼栋, 单元 and 房号")
        out.append(error("missing_address", msg, Where(file=source, row=r.row, column=column),
                         hint=hint))
    if r.phone and not _PLAIN_MOBILE.fullmatch(r.phone):
        found = check_phone(r.phone)
        if found is not None:
            code, message, hint = found
            out.append(error(code, message, Where(file=source, row=r.row, column=mapping["phone"]),
                             hint=hint))
    return out


def _list_problems(recipients: Sequence[Recipient], mapping: Mapping[str, str],
                   source: str) -> List[Problem]:
    out: List[Problem] = []
    if not recipients:
        out.append(error("empty_list", _("the list has no households under its header row"),
                         Where(file=source), hint=_("add one row per household below the header")))
        return out
    by_id: Dict[str, List[Recipient]] = {}
    for r in recipients:
        by_id.setdefault(r.id, []).append(r)
    for same in by_id.values():
        if len(same) < 2:
            continue
        rows = [r.row for r in same]
        listed = (_("row %(first)s and row %(second)s", first=rows[0], second=rows[1])
                  if len(rows) == 2 else rows_text(rows))
        if same[0].id_generated:
            out.append(error(
                "duplicate_household",
                _("the same name and address (%(name)s, %(address)s) appear in %(listed)s",
                  name=same[0].name, address=same[0].address, listed=listed),
                Where(file=source, row=rows[1], column=mapping.get("name")),
                hint=_("delete the repeated row; if they are two households, add an id column "
                       "(编号) that tells them apart")))
        else:
            out.append(error(
                "duplicate_id", _("id %(id)r appears in %(listed)s", id=same[0].id, listed=listed),
                Where(file=source, row=rows[1], column=mapping.get("id")),
                hint=_("give every household its own id; an id must not change between rounds")))
    unassigned = [r.row for r in recipients if not r.volunteer]
    if unassigned:
        if "volunteer" in mapping:
            msg = ngettext("%(num)d household has no volunteer: %(rows)s",
                           "%(num)d households have no volunteer: %(rows)s", len(unassigned),
                           rows=rows_text(unassigned))
            fix = _("fill in the column %(column)r to assign them", column=mapping["volunteer"])
        else:
            msg = _("the list has no volunteer column, so no household is assigned to a "
                    "volunteer")
            fix = _("add a volunteer column (志愿者) to share the delivery out")
        out.append(warning(
            "no_volunteer", msg, Where(file=source, column=mapping.get("volunteer")),
            hint=_("households without a volunteer come last in the delivery order and get a "
                   "run sheet labelled 'unassigned'; %(fix)s", fix=fix)))
    return out
