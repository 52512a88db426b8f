"""The one place Jinja environments are made: templates are data, not code.

:func:`environment` returns a sandboxed environment (Jinja's
:class:`~jinja2.sandbox.ImmutableSandboxedEnvironment`, made stricter) for every
template letterpress renders: the fast renderer's and docxtpl's (pass it as
``jinja_env``). In it a template

- cannot reach Python's internals: an attribute or key starting with ``_``
  (``cycler.__init__.__globals__``, ``''.__class__.__mro__``), ``lipsum`` and any
  unsafe callable raise :class:`~jinja2.sandbox.SecurityError` at once;
- cannot change a list or dict it was given;
- does bounded work per letter (:class:`Limits`): ``range`` gives at most
  ``max_range`` numbers, all loops together run at most ``max_iterations`` times,
  no value or text grows past ``max_text`` characters (``'x' * 10**9`` is refused
  before it is made), the strings made along the way add up to at most
  ``max_work`` characters, and a letter takes at most ``time_limit`` seconds.

A limit that is reached raises :class:`TemplateLimit` (code ``template_limit``),
inside the template's own frames, so the renderer can name the paragraph.
:func:`limits` opens the budget of one letter; a template rendered with
``Template.render`` opens its own. :func:`unsafe_uses` finds the unsafe tags of a
parsed template without running it, for ``check``.
"""
from __future__ import annotations

import contextlib
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, List, Optional, Tuple

from jinja2 import nodes
from jinja2.environment import Template
from jinja2.runtime import markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from letterpress.i18n import _

__all__ = ["environment", "limits", "Limits", "TemplateLimit", "SecurityError", "unsafe_uses"]


@dataclass(frozen=True)
class Limits:
    """The work one letter may do."""

    max_range: int = 10_000
    max_iterations: int = 250_000
    max_text: int = 20 * 1024 * 1024        # characters: one value, and a letter's XML
    max_work: int = 64 * 1024 * 1024        # characters of all strings a letter makes
    max_argument: int = 100_000             # a width, count or size given to a filter
    time_limit: float = 10.0                # seconds per letter


DEFAULT_LIMITS = Limits()
_LOOP_FILTER = "letterpress_bounded_loop"
_CHECK_EVERY = 1024


class TemplateLimit(Exception):
    """A template asked for more work than a letter may do."""

    code = "template_limit"

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message, self.hint = message, hint


class Budget:
    """What is left of one letter's work."""

    __slots__ = ("limits", "deadline", "iterations", "work", "text", "_ticks")

    def __init__(self, lim: Limits) -> None:
        self.limits = lim
        self.deadline = time.monotonic() + lim.time_limit
        self.iterations = lim.max_iterations
        self.work = lim.max_work
        self.text = lim.max_text
        self._ticks = 0

    def tick(self) -> None:
        self._ticks += 1
        if self._ticks >= _CHECK_EVERY:
            self._ticks = 0
            self.check_time()

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise TemplateLimit(
                _("filling in one letter took longer than %(seconds)s seconds",
                  seconds=format(self.limits.time_limit, "g")),
                _("look for loops inside loops or very long repeated text in that paragraph; a "
                  "letter needs neither"))

    def loop(self) -> None:
        self.iterations -= 1
        if self.iterations < 0:
            raise TemplateLimit(
                _("the template's loops and calls ran more than %(count)s times for one letter",
                  count=format(self.limits.max_iterations, ",")), _("look for loops inside loops (or a macro calling "
                                          "itself) in that paragraph; a letter loops over a "
                                          "few items or table rows, not millions"))
        self.tick()

    def spend(self, value: Any) -> Any:
        """Count a string (or list) a template made; refuse one that is too long."""
        size = _size(value)
        if size:
            self.allow(size)
            self.work -= size
            if self.work < 0:
                raise TemplateLimit(
                    _("the template made more than %(count)s characters of text for one letter",
                      count=format(self.limits.max_work, ",")), _("look for a value repeated or joined in a loop in that "
                                        "paragraph"))
        self.tick()
        return value

    def allow(self, size: int, what: str = "") -> None:
        if size > self.limits.max_text:
            what = what or _("a value")
            most = format(self.limits.max_text, ",")
            if size == self.limits.max_text + 1:     # counting stopped there
                raise TemplateLimit(
                    _("%(what)s in the template would be more than %(most)s characters long",
                      what=what, most=most), _("look for a list that holds itself, or text "
                                               "repeated in a loop, in that paragraph"))
            raise TemplateLimit(
                _("%(what)s in the template would be %(size)s characters long; at most "
                  "%(most)s are allowed", what=what, size=format(size, ","),
                  most=most), _("look for text repeated with * or a "
                                "very wide center/format in that "
                                "paragraph"))

    def output(self, size: int) -> None:
        """Count the text a letter writes (all its parts)."""
        self.text -= size
        if self.text < 0:
            raise TemplateLimit(
                _("the letter's text grows past %(count)s characters",
                  count=format(self.limits.max_text, ",")),
                _("look for a loop in that paragraph that repeats far more than the letter "
                  "needs"))
        self.tick()


_state = threading.local()


def current() -> Budget:
    """The budget of the letter being rendered (a fresh one, for one step, when none is open)."""
    budget = getattr(_state, "budget", None)
    return budget if budget is not None else Budget(DEFAULT_LIMITS)


@contextlib.contextmanager
def limits(lim: Optional[Limits] = None, *, reuse: bool = False) -> Iterator[Budget]:
    """Open the budget of one letter (all its parts share it); with ``reuse``, keep the one
    already open, if any."""
    before = getattr(_state, "budget", None)
    if reuse and before is not None:
        yield before
        return
    budget = _state.budget = Budget(lim or DEFAULT_LIMITS)
    try:
        yield budget
    finally:
        _state.budget = before


def _size(value: Any) -> int:
    if isinstance(value, (str, list, tuple, bytes)):
        return len(value)
    return 0


_CONTAINERS = (list, tuple, dict, set, frozenset)
_MAX_NODES = 200_000


def _text_size(value: Any, limit: int = 1 << 62) -> int:
    """About how many characters ``str(value)`` takes: a list holding one long string a
    thousand times is small in memory but huge as text. Counting stops past ``limit``."""
    if isinstance(value, (str, bytes)):
        return len(value)
    if not isinstance(value, _CONTAINERS):
        return 24
    total, stack, nodes = 0, [value], 0
    while stack and total <= limit:
        nodes += 1
        if nodes > _MAX_NODES:      # a list nested in itself over and over
            return max(total, limit + 1)
        item = stack.pop()
        if isinstance(item, (str, bytes)):
            total += len(item) + 4
        elif isinstance(item, dict):
            total += 2 + 4 * len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, _CONTAINERS):
            total += 2 + 2 * len(item)
            stack.extend(item)
        else:
            total += 24
    return total


# -- the environment ------------------------------------------------------------------------
class BoundedTemplate(Template):
    """A template whose joins are bounded and which renders within a letter's budget."""

    @classmethod
    def _from_namespace(cls, environment, namespace, globals):   # noqa: A002 - Jinja's name
        namespace["str_join"] = _bounded_join(str_join)
        namespace["markup_join"] = _bounded_join(markup_join)
        return super()._from_namespace(environment, namespace, globals)

    def render(self, *args: Any, **kwargs: Any) -> str:
        return "".join(self.generate(*args, **kwargs))

    def generate(self, *args: Any, **kwargs: Any) -> Iterator[str]:
        with limits(getattr(self.environment, "limits", None), reuse=True) as budget:
            for piece in super().generate(*args, **kwargs):
                budget.output(len(piece))
                yield piece


def _bounded_join(join: Callable) -> Callable:
    def bounded(seq: Iterable) -> Any:
        items = list(seq)
        budget = current()
        budget.allow(sum(_text_size(x, budget.limits.max_text) for x in items))
        return budget.spend(join(items))
    return bounded


def _concat(pieces: Iterable[str]) -> str:
    items = pieces if isinstance(pieces, list) else list(pieces)
    budget = current()
    budget.allow(sum(map(len, items)), _("a block or macro's text"))
    return budget.spend("".join(items))


class Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, stricter: unsafe access raises at once; work is bounded."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})
    template_class = BoundedTemplate
    concat = staticmethod(_concat)

    def __init__(self, *args: Any, limits: Optional[Limits] = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits or DEFAULT_LIMITS
        self.globals.pop("lipsum", None)       # not for letters: unbounded and a known way in
        self.globals["range"] = self._range
        self.filters = {name: _guard_filter(name, f) for name, f in self.filters.items()}
        self.filters[_LOOP_FILTER] = _bounded_loop
        shown = self.finalize
        if getattr(shown, "jinja_pass_arg", None) is None:
            self.finalize = _bounded_finalize(shown, self.limits)

    def _range(self, *args: int) -> range:
        numbers = range(*args)
        if len(numbers) > self.limits.max_range:
            raise TemplateLimit(
                _("range() asked for %(count)s numbers; at most %(most)s are allowed",
                  count=format(len(numbers), ","), most=format(self.limits.max_range, ",")), _("a letter loops over a few items or "
                                                            "rows; use a smaller range"))
        return numbers

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        raise SecurityError(f"the template may not use {attribute!r} of a "
                            f"{type(obj).__name__} value")

    def getattr(self, obj: Any, attribute: str) -> Any:
        if attribute.startswith("_"):    # whether it exists or not: never a way in
            self.unsafe_undefined(obj, attribute)
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(argument, str) and argument.startswith("_") and not isinstance(obj, dict):
            self.unsafe_undefined(obj, argument)
        return super().getitem(obj, argument)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        return super().is_safe_attribute(obj, attr, value) and attr != "mro"

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        budget = current()
        budget.tick()
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if _size(seq) and isinstance(n, int):
                    budget.allow(_text_size(seq, self.limits.max_text) * max(n, 0))
        elif operator == "**" and isinstance(left, int) and isinstance(right, int):
            if abs(left) > 1 and right > 0 and right * abs(left).bit_length() > 65_536:
                raise TemplateLimit(_("a power in the template would be a number of more than "
                                      "20,000 digits"), _("use smaller numbers in that paragraph"))
        elif operator == "%" and isinstance(left, str):
            self._check_format(left, right if isinstance(right, tuple) else (right,), "%")
        elif operator == "+" and _size(left) and _size(right):
            budget.allow(len(left) + len(right))
        return budget.spend(super().call_binop(context, operator, left, right))

    def _check_format(self, text: str, args: Iterable[Any], mark: str = "{") -> None:
        args = list(args)
        if re.search(r"\d{6,}", text) or any(
                isinstance(a, int) and abs(a) > self.limits.max_argument for a in args):
            raise TemplateLimit(
                _("a format in the template asks for a width or precision over %(most)s",
                  most=format(self.limits.max_argument, ",")), _("use a small width in that paragraph"))
        values = [v for a in args for v in (a.values() if isinstance(a, dict) else (a,))]
        biggest = max((_text_size(v, self.limits.max_text) for v in values), default=0)
        current().allow(len(text) + text.count(mark) * biggest)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        budget = current()
        budget.loop()      # a call (a macro calling itself...) counts as a turn of a loop
        owner = getattr(getattr(__obj, "__wrapped__", __obj), "__self__", None)
        if isinstance(owner, str):
            __self._check_str_call(owner, __obj.__name__, args, kwargs)
        return budget.spend(super().call(__context, __obj, *args, **kwargs))

    def _check_str_call(self, text: str, name: str, args: tuple, kwargs: dict) -> None:
        values = list(args) + list(kwargs.values())
        if name in ("format", "format_map"):
            self._check_format(text, values)
            return
        for value in values:
            if isinstance(value, int) and abs(value) > self.limits.max_argument:
                raise TemplateLimit(
                    _("the template calls %(name)s() with %(value)s; at most %(most)s is "
                      "allowed", name=name, value=format(value, ","),
                      most=format(self.limits.max_argument, ",")), _("use a smaller number there"))
        budget = current()
        if name == "join" and args:
            items = list(args[0])
            budget.allow(len(text) * len(items) + sum(map(_size, items)))
        elif name == "replace" and len(args) >= 2:
            count = text.count(args[0]) if args[0] else len(text) + 1
            budget.allow(len(text) + count * _size(args[1]))
        elif name == "expandtabs":
            budget.allow(len(text) + text.count("\t") * int(values[0] if values else 8))

    def _generate(self, source: Any, name: Any, filename: Any, defer_init: bool = False) -> str:
        for loop in source.find_all(nodes.For):   # every loop counts its turns
            loop.iter = nodes.Filter(loop.iter, _LOOP_FILTER, [], [], None, None,
                                     lineno=loop.iter.lineno)
        return super()._generate(source, name, filename, defer_init)


def _bounded_finalize(shown: Optional[Callable], lim: Limits) -> Callable:
    """What ``{{ }}`` writes: a list or dict is turned into text, so its text counts."""
    def finalize(value: Any) -> Any:
        if isinstance(value, _CONTAINERS):
            current().allow(_text_size(value, lim.max_text), _("a list or table shown"))
        return shown(value) if shown is not None else value
    return finalize


def _bounded_loop(iterable: Any) -> Iterator[Any]:
    budget = current()
    for item in iterable:
        budget.loop()
        yield item


_STRINGIFY = frozenset({"string", "tojson", "pprint", "e", "escape", "forceescape", "urlize",
                        "center", "indent", "wordwrap", "truncate", "title", "upper", "lower",
                        "capitalize", "trim", "striptags", "urlencode", "safe", "xmlattr",
                        "wordcount", "replace", "format"})
_FREE_FILTERS = frozenset({"default", "d", "int", "float", "round", "abs", "max", "min", "sum",
                           "random", "replace"})


def _guard_filter(name: str, function: Callable) -> Callable:
    """A filter that checks its arguments and counts what it makes."""
    free = name in _FREE_FILTERS
    joins = name == "join"
    formats = name == "format"
    stringifies = name in _STRINGIFY
    passes = getattr(function, "jinja_pass_arg", None) is not None

    def guarded(*args: Any, **kwargs: Any) -> Any:
        budget = current()
        budget.tick()
        lim = budget.limits
        values = list(args[1:] if passes else args)   # without the context or environment
        if not free:
            for value in values[1:] + list(kwargs.values()):
                if isinstance(value, (int, float)) and not isinstance(value, bool) \
                        and abs(value) > lim.max_argument:
                    raise TemplateLimit(
                        _("the template gives the filter %(name)r the number %(value)s; at "
                          "most %(most)s is allowed", name=name, value=format(value, ","),
                          most=format(lim.max_argument, ",")), _("use a smaller number there"))
        if stringifies and values and isinstance(values[0], _CONTAINERS):
            budget.allow(_text_size(values[0], lim.max_text))
        if formats and values and isinstance(values[0], str) and re.search(r"\d{6,}", values[0]):
            raise TemplateLimit(_("a format in the template asks for a width or precision "
                                  "over %(most)s", most=format(lim.max_argument, ",")), _("use a small width in that paragraph"))
        if name == "replace" and len(values) >= 3 and isinstance(values[0], str):
            old, new = str(values[1]), str(values[2])
            count = values[0].count(old) if old else len(values[0]) + 1
            budget.allow(len(values[0]) + count * len(new))
        if joins and values:
            items = list(values[0])
            sep = values[1] if len(values) > 1 and isinstance(values[1], str) else ""
            budget.allow(len(sep) * len(items) + sum(map(_size, items)))
            args = tuple(a if a is not values[0] else items for a in args)
        return budget.spend(function(*args, **kwargs))

    for attr in ("jinja_pass_arg", "__name__", "__doc__"):   # pass_context & co. as before
        if hasattr(function, attr):
            setattr(guarded, attr, getattr(function, attr))
    return guarded


def environment(**options: Any) -> Sandbox:
    """A Jinja environment for letter templates: sandboxed, with bounded work.

    ``options`` are :class:`jinja2.Environment`'s (``autoescape``, ``undefined``,
    ``finalize``...) plus ``limits``, a :class:`Limits`. docxtpl's fallback passes the
    result as ``jinja_env``.
    """
    return Sandbox(**options)


# -- found without running the template --------------------------------------------------------
def unsafe_uses(ast: nodes.Template) -> List[Tuple[int, str]]:
    """(line, tag text) for each place in a parsed template that reaches for what templates
    may not use: an attribute or key starting with ``_``, ``attr('_...')``, ``.mro``.
    (Names such as ``config`` or ``lipsum`` are not defined: ``check`` reports them as
    fields nothing provides.)"""
    found: List[Tuple[int, str]] = []
    for node in ast.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter)):
        if isinstance(node, nodes.Getattr) and node.attr.startswith("_"):
            found.append((node.lineno, f".{node.attr}"))
        elif isinstance(node, nodes.Getattr) and node.attr == "mro":
            found.append((node.lineno, ".mro"))
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const) \
                and isinstance(node.arg.value, str) and node.arg.value.startswith("_"):
            found.append((node.lineno, f"[{node.arg.value!r}]"))
        elif isinstance(node, nodes.Filter) and node.name == "attr" and node.args \
                and isinstance(node.args[0], nodes.Const) \
                and str(node.args[0].value).startswith("_"):
            found.append((node.lineno, f"attr({node.args[0].value!r})"))
    return sorted(set(found))
