"""Personalised letters: template checks, the per-household context, and rendering.

The rendering engine itself is :mod:`letterpress.docx.template`; this module decides
what goes into each letter, checks the template against the list before
anything is written, and writes ``letters/NNNN-name.docx`` plus the merged
``letters.docx`` (one print job), in parallel when ``jobs > 1``.
"""
from __future__ import annotations

import datetime as _dt
import functools
import io
import operator
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import (
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
)

from letterpress.errors import (
    InputError,
    LetterpressError,
    Problem,
    TemplateProblemError,
    Where,
    error,
    warning,
)
from letterpress.files import safe_filename, staged_dir
from letterpress.i18n import N_, _
from letterpress.models import CANONICAL_FIELDS, Household, Progress, Recipient
from letterpress.packed import Lazy
from letterpress.pipeline import reuse
from letterpress.pipeline.pictures import PictureProblem, PictureRule, Swapper

#: Values every letter gets besides the recipient's own fields.
BATCH_FIELDS = ("seq", "total", "batch", "org", "date", "items", "lang")
#: Values that exist once the batch is registered in the ledger (``letterpress build``).
LEDGER_FIELDS = ("code", "url", "qr")
#: Names Jinja itself provides.
_JINJA_GLOBALS = {"range", "dict", "cycler", "joiner", "namespace", "loop", "true",
                  "false", "none", "True", "False", "None"}

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")
_ITEM_SPLIT = re.compile(r"\s*[、,，;；]\s*")


def format_date(date: _dt.date, lang: str) -> str:
    """``2020年2月24日`` in Chinese, ``24 February 2020`` in English."""
    if lang == "en":
        return f"{date.day} {_MONTHS[date.month - 1]} {date.year}"
    return f"{date.year}年{date.month}月{date.day}日"


def split_items(text: str) -> List[str]:
    """``肉制品、蔬菜; 口罩`` -> ``['肉制品', '蔬菜', '口罩']``."""
    return [part for part in _ITEM_SPLIT.split(text.strip()) if part] if text else []


@dataclass(frozen=True)
class LetterOptions:
    """What every letter of a batch shares (picklable, so worker processes get it)."""

    template: str                 # path of the .docx template
    batch: str
    org: str
    date: _dt.date
    lang: str = "zh"
    package: str = ""
    total: int = 0
    extra: Tuple[Tuple[str, object], ...] = ()   # the config's [context] table
    qr_width_mm: float = 25.0
    pictures: Tuple[PictureRule, ...] = ()       # the config's [pictures] table
    list_dir: str = ""                           # the recipient list's folder (picture columns)
    plugins: Tuple[str, ...] = ()                # the config's [jinja] plugins
    engine: str = "auto"                         # "docxtpl": every letter rendered by docxtpl

    def base_context(self) -> dict:
        ctx = dict(self.extra)
        ctx.update(batch=self.batch, org=self.org, date=format_date(self.date, self.lang),
                   lang=self.lang, total=self.total)
        return ctx


def letter_filename(household: Household, total: int) -> str:
    """``0001-王秀英.docx``: the sequence, zero-padded, then a file-system-safe name."""
    width = max(4, len(str(total)))
    return f"{household.seq:0{width}d}-{safe_filename(household.name)}.docx"


class LetterFiles(Lazy[str]):
    """The letters' paths relative to the output folder (``letters/0001-王秀英.docx``) of
    ``households`` in delivery order, made from each household when read: a district's
    100,000 names are not held."""

    def __init__(self, households: Sequence[Household], total: int) -> None:
        self._households, self._total = households, total

    def _path(self, household: Household) -> str:
        return "letters/" + letter_filename(household, self._total)

    def __len__(self) -> int:
        return len(self._households)

    def _one(self, index: int) -> str:
        return self._path(self._households[index])

    def __iter__(self) -> Iterator[str]:
        return map(self._path, self._households)


def provided_fields(headers: Iterable[str], extra: Iterable[str], with_codes: bool) -> set:
    fields = set(CANONICAL_FIELDS) | set(headers) | set(BATCH_FIELDS) | set(extra)
    if with_codes:
        fields |= set(LEDGER_FIELDS)
    return fields


def check_template(variables: Mapping[str, Sequence[str]], recipients: Sequence[Recipient],
                   headers: Sequence[str], extra: Iterable[str], template_name: str,
                   with_codes: bool) -> List[Problem]:
    """Every field the template uses must come from a column or a setting.

    ``variables`` maps each field the template uses to where it is used (from
    :meth:`letterpress.docx.template.CompiledTemplate.variables`). Errors for fields
    nothing provides; warnings for optional fields that are empty in some rows.
    """
    problems: List[Problem] = []
    extra = list(extra)
    provided = provided_fields(headers, extra, with_codes)
    variables = {name: [_quote_place(p) for p in places] for name, places in variables.items()}
    for name in sorted(variables):
        if name in provided or name in _JINJA_GLOBALS:
            continue
        places = list(variables[name])
        where = Where(file=template_name, part=places[0] if places else None)
        also = _(" (also %(places)s)", places=_(", ").join(places[1:3])) \
            if len(places) > 1 else ""
        if name in LEDGER_FIELDS:
            problems.append(error(
                "ledger_field", _("the template uses {{ %(name)s }}%(also)s, which only "
                                  "`letterpress build` provides (it registers each household's "
                                  "code)", name=name, also=also), where,
                _("run `letterpress build` instead of `letterpress letters`, or remove the "
                  "field")))
            continue
        import difflib

        close = difflib.get_close_matches(name, sorted(provided - _JINJA_GLOBALS), n=1, cutoff=0.6)
        hint = _("did you mean {{ %(name)s }}? ", name=close[0]) if close else ""
        hint += _("add a column with that header to the recipient list, or a value under "
                  "[context] in letterpress.toml")
        problems.append(error(
            "unknown_field", _("the template uses {{ %(name)s }}%(also)s, but no column or "
                               "setting provides it", name=name, also=also), where, hint))
    # Optional fields the template uses that are empty in some rows.
    used_recipient = [n for n in variables if n in set(CANONICAL_FIELDS) | set(headers)]
    for name in sorted(used_recipient):
        if name in ("id", "name", "address"):
            continue  # the list check already reports these
        if name in CANONICAL_FIELDS:   # canonical names win over a header of the same name
            empty = [r.row for r in recipients if not getattr(r, name)]
        else:
            empty = [r.row for r in recipients if not r.columns.get(name, "")]
        if empty and len(empty) < len(recipients):
            rows = _(", ").join(str(r) for r in empty[:10]) + (" …" if len(empty) > 10 else "")
            places = list(variables[name])
            problems.append(warning(
                "empty_field", _("{{ %(name)s }} is used by the template but empty in "
                                 "%(count)s row(s): %(rows)s",
                                 name=name, count=len(empty), rows=rows), Where(file=template_name,
                                                    part=places[0] if places else None),
                _("those letters will have nothing there; fill the cells if that reads badly")))
        elif empty:
            problems.append(warning(
                "empty_field", _("{{ %(name)s }} is used by the template but empty in every row",
                                 name=name),
                Where(file=template_name), _("fill the column or take the field out of the "
                                             "template")))
    return problems


UNSAFE_HINT = N_("a template is a letter, not a program: it may use the fields (columns and "
               "settings) and simple tags, not Python's internals; remove that tag")


def check_safety(tpl, options: "LetterOptions", sample: Optional[Household],
                 template_name: str) -> List[Problem]:
    """Tags that reach for Python's internals (found without running the template), then
    one trial letter for ``sample``: a tag the sandbox refuses or work past the limits
    (a huge repeat, loops inside loops) is reported with its place, before anything is
    written. Other failures of the trial are left to the checks that name them."""
    found: dict = {}
    for place, what in tpl.unsafe_places():      # one problem per place, naming every tag
        found.setdefault(place, []).append(what)
    problems = [error("template_unsafe", _("the template uses %(what)s, which reaches into "
                                           "Python's internals; templates may not",
                                           what=", ".join(dict.fromkeys(whats))),
                      Where(file=template_name, part=place), _(UNSAFE_HINT))
                for place, whats in found.items()]
    if problems or sample is None:
        return problems
    ctx = household_context(tpl, options, options.base_context(), sample)
    for name in LEDGER_FIELDS:
        ctx.setdefault(name, "")
    try:
        tpl.trial(ctx)
    except TemplateProblemError as exc:
        if exc.code in ("template_unsafe", "template_limit"):
            problems.append(error(exc.code, exc.message,
                                  Where(file=template_name, part=exc.where.part), exc.hint))
    except LetterpressError:
        pass
    return problems


def _quote_place(place: str) -> str:
    """``paragraph 3: 尊敬的{{ nmae }}`` -> ``paragraph 3 (“尊敬的{{ nmae }}”)``."""
    where, sep, text = place.partition(": ")
    return _("%(place)s (“%(text)s”)", place=where, text=text) if sep else place


# ---------------------------------------------------------------------------
# Rendering (in this process or in a pool of worker processes)

_worker_state: Optional[tuple] = None
_RECIPIENT_FIELDS = operator.attrgetter(*CANONICAL_FIELDS)


def _init_worker(options: LetterOptions, staging: str,
                 households: Optional[Sequence[Household]] = None,
                 previous: Optional[reuse.Index] = None, old_dir: str = "",
                 setup: tuple = ()) -> None:
    """What rendering needs, once per process: (template, options, context, folder,
    households, the previous build's letter index, its letters folder). A forked
    worker finds it made already, before the fork. ``setup``: a worker's
    :func:`letterpress.pipeline.processes.worker_setup` arguments."""
    global _worker_state
    if setup:
        from letterpress.pipeline import processes

        processes.worker_setup(*setup)
    if households is None and _worker_state is not None \
            and _worker_state[1:4:2] == (options, staging):
        return
    tpl = open_template(options.template, options.plugins, options.engine)
    tpl.reset_replacements()   # a template kept from an earlier batch keeps none of its pictures
    _worker_state = (tpl, options, options.base_context(), staging, households,
                     Swapper(options.pictures, options.list_dir), previous or {}, old_dir)


def open_template(path: str, plugins: Sequence[str] = (), engine: str = "auto"):
    """The compiled template at ``path``, with the filters of the Jinja ``plugins``."""
    from letterpress.docx.plugins import load_plugins
    from letterpress.docx.template import CompiledTemplate

    if not plugins and engine == "auto":
        return CompiledTemplate.from_file(path)
    return CompiledTemplate(path, engine=engine, **load_plugins(plugins).as_kwargs())


def _state() -> tuple:
    assert _worker_state is not None, "_init_worker runs first"
    return _worker_state


@functools.lru_cache(maxsize=256)
def _items(text: str) -> Tuple[str, ...]:
    return tuple(split_items(text))


def household_context(tpl, options: LetterOptions, base: Mapping, household: Household) -> dict:
    """The template context of one household: its fields by both names, plus the batch's."""
    r = household.recipient
    ctx = dict(base)
    ctx.update(r.columns)    # every column by its header, then the canonical names (they win)
    ctx.update(zip(CANONICAL_FIELDS, _RECIPIENT_FIELDS(r)))
    ctx["seq"] = household.seq
    ctx["items"] = list(_items(r.package or options.package))
    if household.code:
        ctx["code"] = household.code
        ctx["url"] = household.url
        if tpl.uses("qr"):      # an image costs milliseconds: only for templates that show it
            ctx["qr"] = _qr_image(tpl, household.url, options.qr_width_mm)
    return ctx


def _qr_image(tpl, url: str, width_mm: float):
    from docx.shared import Mm
    from docxtpl import InlineImage

    from letterpress.slips import qr

    return InlineImage(tpl, io.BytesIO(qr.png(url, 400)), width=Mm(width_mm))


def _render_one(household: Household, previous: Optional[reuse.Index] = None):
    """``(file name, letter, index entry)`` of one household; ``previous``: the previous
    build's index entries (this process's own when not given)."""
    from letterpress.docx.template import write_file

    tpl, options, base, staging, _unused, swapper, known, old_dir = _state()
    previous = known if previous is None else previous
    try:
        swapper.apply(tpl, household.recipient.columns)
    except PictureProblem as exc:   # a file changed since the check
        raise InputError(str(exc), code="bad_picture", hint=exc.hint,
                         where=Where(row=household.recipient.row)) from None
    letter = tpl.render(household_context(tpl, options, base, household))
    name = letter_filename(household, options.total)
    target = os.path.join(staging, name)
    fp = reuse.fingerprint(tpl.key, options, household)
    # a letter with swapped pictures is made again: the picture files may have changed
    entry = reuse.keep(previous, old_dir, name, fp, target) \
        if previous and not options.pictures else None
    if entry is None:     # new or changed: written (an unchanged one is linked, not written)
        write_file(target, letter.to_bytes(tpl))
        entry = reuse.noted(fp, target)
    return name, letter, entry


def _render_block(block: Sequence[Household], previous: reuse.Index) -> List[tuple]:
    """A worker's letters: the households of one block and their previous index entries
    are all it is sent."""
    return [_render_one(household, previous) for household in block]


@dataclass(frozen=True)
class LettersResult:
    count: int
    letters_dir: Path
    merged: Path
    files: Sequence[str]       # relative to the output folder, in delivery order (LetterFiles)
    kept: int = 0              # letters of the previous build kept as they were


def render_letters(households: Sequence[Household], options: LetterOptions, out_dir: Path,
                   jobs: int = 1, progress: Optional[Progress] = None) -> LettersResult:
    """Write ``out_dir/letters/*.docx`` and ``out_dir/letters.docx``.

    Letters are rendered into a staging folder that replaces ``letters/`` only
    when every letter and the merged document are written: a failure leaves
    the previous batch's files as they were.
    """
    from letterpress.docx.template import MergedDocument

    count = 0
    total = len(households)
    from letterpress.pipeline.outputs import ours_in

    old_dir = out_dir / "letters"
    previous = reuse.read_index(out_dir) if old_dir.is_dir() else {}
    kept = 0
    with reuse.IndexWriter(out_dir) as index, staged_dir(old_dir, ours_in("letters")) as staging:
        _init_worker(options, str(staging), households, previous, str(old_dir))
        tpl = _state()[0]
        with MergedDocument(tpl, out_dir / "letters.docx") as merged:
            for done, (name, letter, entry) in enumerate(
                    _render_all(households, options, staging, jobs), start=1):
                merged.add(letter)
                count = done
                index.add(name, entry)
                kept += previous.get(name) == entry
                if progress:
                    progress("letters", done, total)
    return LettersResult(count, out_dir / "letters", out_dir / "letters.docx",
                         LetterFiles(households, options.total), kept)


def _render_all(households: Sequence[Household], options: LetterOptions, staging: Path,
                jobs: int) -> Iterator[tuple]:
    """(file name, letter) in delivery order. With ``jobs`` > 1 this process renders one
    block of letters in every ``2 * jobs - 1`` (it also merges them all) and ``jobs - 1``
    worker processes the others, a few blocks ahead: ``jobs`` processes in all."""
    n = len(households)
    if jobs <= 1 or n < 4 * jobs:
        for household in households:
            yield _render_one(household)
        return
    import collections

    from letterpress.pipeline import processes

    size = max(1, min(32, n // (jobs * 8)))
    blocks = [(start, min(start + size, n)) for start in range(0, n, size)]
    mine = 2 * jobs - 1
    theirs = iter([b for k, b in enumerate(blocks) if k % mine != mine - 1])
    state = _state()
    previous = state[6]
    total = options.total

    def sent(start: int, stop: int) -> tuple:
        block = households[start:stop]
        names = (letter_filename(h, total) for h in block)
        return block, {name: previous[name] for name in names if name in previous}

    ctx = processes.context(n)
    args: tuple = (options, str(staging), None, {}, state[7], processes.setup_args())
    with ctx.Pool(jobs - 1, _init_worker, args) as pool:
        ahead: collections.deque = collections.deque()
        for k, (start, stop) in enumerate(blocks):
            while len(ahead) < 4 * (jobs - 1):   # keep the workers busy, memory bounded
                block = next(theirs, None)
                if block is None:
                    break
                ahead.append(pool.apply_async(_render_block, sent(*block)))
            if k % mine == mine - 1:
                for index in range(start, stop):
                    yield _render_one(households[index])
            else:
                yield from ahead.popleft().get()
