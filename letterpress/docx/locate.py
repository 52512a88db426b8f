"""Where things are in a template: the fields it uses and the paragraph of each tag.

Errors and :meth:`~letterpress.docx.template.CompiledTemplate.variables` name places the way
a person finds them in Word: "header 1, paragraph 2", with the paragraph's text.
Paragraphs are numbered as in the template file, in document order (table cells
included), also where docxtpl removed a ``{%p %}`` paragraph before them.
"""
from __future__ import annotations

import re
from typing import Dict, List, Optional, Tuple

from jinja2 import meta, nodes

from letterpress.docx import docxtpl_rules as docxtpl
from letterpress.errors import TemplateProblemError, Where
from letterpress.i18n import N_, _

SYNTAX_HINT = N_("check the tags in that paragraph: every {% if %} needs an {% endif %}, every "
               "{% for %} an {% endfor %}, and tags are written {{ name }} or {% ... %}; if Word "
               "split a tag with formatting or autocorrect, retype it in one go")
_UNCLOSED = re.compile(r"Unexpected end of template\..*needs to be closed is '(\w+)'", re.S)
_MISPLACED = re.compile(r"Encountered unknown tag '(\w+)'\..*needs to be closed is '(\w+)'", re.S)
_UNKNOWN_TAG = re.compile(r"Encountered unknown tag '(\w+)'\.$")
_UNEXPECTED = re.compile(r"unexpected (?:char )?'(.+?)'")
_EXPECTED_END = re.compile(r"expected token 'end of print statement', got '(.+?)'")
_PARA = re.compile(r"<w:p([ >])")
_TAGS = re.compile(r"\{[{%#]")
_LINES = re.compile(r"\r\n|\r|\n")
_ENTITY = re.compile(r"&(#[xX][0-9a-fA-F]+|#[0-9]+|amp|lt|gt|quot|apos);")
_NAMED = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}


def _unescape(text: str) -> str:
    """XML's character references and its five named entities, as the characters."""
    def one(m: "re.Match") -> str:
        ref = m.group(1)
        if ref[0] != "#":
            return _NAMED[ref]
        try:
            return chr(int(ref[2:], 16) if ref[1] in "xX" else int(ref[1:]))
        except (ValueError, OverflowError):
            return m.group(0)
    return _ENTITY.sub(one, text) if "&" in text else text


def snippet(line: str, focus: Optional[str] = None, width: int = 40) -> str:
    """The text of a line of XML, shortened around ``focus``."""
    text = " ".join(_unescape(re.sub(r"<[^>]+>", "", line)).split())
    if len(text) <= width:
        return text
    at = max(text.find(focus) - 10, 0) if focus and focus in text else 0
    return ("…" if at else "") + text[at:at + width] + "…"


def _marks(part, count: int) -> List[Optional[int]]:
    """The template paragraph number of each line of ``part.jsrc`` (None: not a paragraph)."""
    numbers = iter(range(1, 1 << 30))

    def mark(m):   # empty paragraphs (<w:p/>) count but keep their form
        n = next(numbers)
        return m.group(0) if m.group(1) == "/" else f'<w:p lpn="{n}"{m.group(1)}'
    marked = re.sub(r"<w:p([ >/])", mark, part.source)
    dlines = _LINES.split(_PARA.sub(r"\n<w:p\1", docxtpl.patch(marked)))
    if len(dlines) != count:   # should patching ever differ: number by line
        return [None] + list(range(1, count))
    return [int(m.group(1)) if (m := re.match(r'<w:p lpn="(\d+)"', d)) else None
            for d in dlines]


def describe(part, lineno: Optional[int], focus: Optional[str] = None) -> Tuple[str, str]:
    """("header 1, paragraph 2", its text) for a line of ``part``'s Jinja source."""
    lines = _LINES.split(part.jsrc)
    if part._marks is None:
        part._marks = _marks(part, len(lines))
    i = min(max((lineno or 1) - 1, 0), len(lines) - 1)
    line, number = lines[i], part._marks[i]
    end = line.rfind("</w:p>") + 6
    tail = re.findall(r"\{%.*?%\}|\{\{.*?\}\}", line[end:]) if number and end > 5 else []
    inside = focus in line[:end] if focus else bool(_TAGS.search(line[:end]))
    if tail and not inside:   # a tag left by a {%p %}/{%tr %} paragraph docxtpl removed
        k = next((k for k, tag in enumerate(tail, 1) if focus and focus in tag), 1)
        after = next((m for m in part._marks[i + 1:] if m), None)
        number, line = min(number + k, after - 1) if after else number + k, tail[k - 1]
    elif tail:
        line = line[:end]
    paragraph = _("paragraph %(number)s", number=number) if number else ""
    place = _(", ").join(x for x in (part.label, paragraph) if x)
    return place or _("the start of the document"), snippet(line, focus)


def explain_syntax(message: str) -> str:
    """Jinja's syntax error ``message`` in the user's language, for the usual mistakes (an
    ``{% if %}`` never closed, an end tag in the wrong place, a stray brace); others as Jinja
    wrote them."""
    found = _UNCLOSED.search(message)
    if found:
        return _("{%% %(block)s %%} is never closed: its {%% end%(block)s %%} is missing",
                 block=found.group(1))
    found = _MISPLACED.search(message)
    if found:
        return _("{%% %(tag)s %%} comes before the {%% %(block)s %%} above it is closed (its "
                 "{%% end%(block)s %%} is missing or comes later)", tag=found.group(1),
                 block=found.group(2))
    found = _UNKNOWN_TAG.search(message)
    if found:
        if found.group(1).startswith("end"):
            return _("{%% %(tag)s %%} closes nothing: the tag that opens it is missing",
                     tag=found.group(1))
        return _("{%% %(tag)s %%} is not a tag templates know", tag=found.group(1))
    found = _EXPECTED_END.search(message)
    if found:
        return _("a field tag {{ ... }} holds more than one name (%(extra)r is left over)",
                 extra=found.group(1))
    found = _UNEXPECTED.search(message)
    if found:
        return _("unexpected %(char)r: a brace or character out of place", char=found.group(1))
    return message


def problem(file: str, code: str, part, lineno: Optional[int], message: str, hint: str,
            focus: Optional[str] = None) -> TemplateProblemError:
    """A :class:`TemplateProblemError` naming the place in ``part`` and quoting its text."""
    place, text = describe(part, lineno, focus)
    if text:
        message += _("; the paragraph reads “%(text)s”", text=text)
    return TemplateProblemError(message, code=code, where=Where(file=file, part=place), hint=hint)


def template_line(exc: BaseException) -> Optional[int]:
    """The template line where ``exc`` was raised (Jinja names those frames ``<template>``)."""
    line, tb = None, exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def variables(env, parts, prop_env, core) -> Tuple[Dict[str, List[str]], frozenset]:
    """Each field the ``parts`` (and document properties ``core``) use, with its places;
    and the names among them used only where a missing value is allowed."""
    found: Dict[str, List[str]] = {}
    required: set = set()
    seen: set = set()
    for part in (p for p in parts if p.dynamic):
        ast = part.parsed(env)
        names = meta.find_undeclared_variables(ast)
        uses = sorted(_loads(ast, names, frozenset(), frozenset()), key=lambda x: x[1])
        for name, lineno, optional in uses:
            seen.add(name)
            if not optional:
                required.add(name)
            place, text = describe(part, lineno, name)
            found.setdefault(name, []).append(f"{place}: {text}" if text else place)
        for name in sorted(names - set(found)):
            found[name] = [part.label or _("the body")]
            required.add(name)
        required |= names - seen
    for _marker, label, _tpl, text in core[2] if core else ():
        ast = prop_env.parse(text)
        names = meta.find_undeclared_variables(ast)
        for name, _line, optional in _loads(ast, names, frozenset(), frozenset()):
            if not optional:
                required.add(name)
        for name in sorted(names):
            found.setdefault(name, []).append(label)
    found = {name: list(dict.fromkeys(places)) for name, places in found.items()}
    return found, frozenset(set(found) - required)


_DEFAULT = ("default", "d")
_DEFINED = ("defined", "undefined")


def _tested(test: nodes.Node) -> frozenset:
    """Names a condition tests with ``is defined`` (what its true branch may use)."""
    found = [test, *test.find_all(nodes.Test)] if isinstance(test, nodes.Test) \
        else list(test.find_all(nodes.Test))
    return frozenset(t.node.name for t in found
                     if t.name == "defined" and isinstance(t.node, nodes.Name))


def _loads(node: nodes.Node, names: set, hidden: frozenset, guarded: frozenset):
    """(name, line, optional) for each use of a field in ``names``, skipping loop variables;
    optional: a use that allows the field to be missing (``|default``, ``is defined``, or
    under ``{% if x is defined %}``)."""
    if isinstance(node, nodes.Name):
        if node.ctx == "load" and node.name in names and node.name not in hidden:
            yield node.name, node.lineno, node.name in guarded
        return
    if isinstance(node, (nodes.Filter, nodes.Test)) and isinstance(node.node, nodes.Name) \
            and node.name in (_DEFAULT if isinstance(node, nodes.Filter) else _DEFINED):
        name = node.node.name
        if name in names and name not in hidden:
            yield name, node.lineno, True
        for child in [*node.args, *node.kwargs] + ([node.dyn_args] if node.dyn_args else []) \
                + ([node.dyn_kwargs] if node.dyn_kwargs else []):
            yield from _loads(child, names, hidden, guarded)
        return
    if isinstance(node, (nodes.If, nodes.CondExpr)):
        inner = guarded | _tested(node.test)
        yield from _loads(node.test, names, hidden, guarded)
        body = node.body if isinstance(node, nodes.If) else [node.expr1]
        for child in body:
            yield from _loads(child, names, hidden, inner)
        rest = [*node.elif_, *node.else_] if isinstance(node, nodes.If) else \
            [node.expr2] if node.expr2 is not None else []
        for child in rest:
            yield from _loads(child, names, hidden, guarded)
        return
    if isinstance(node, nodes.For):
        inner = hidden | {n.name for n in node.target.find_all(nodes.Name)} | {"loop"}
        yield from _loads(node.iter, names, hidden, guarded)
        for child in [*node.body, *([node.test] if node.test else [])]:
            yield from _loads(child, names, inner, guarded)
        for child in node.else_:
            yield from _loads(child, names, hidden, guarded)
        return
    for child in node.iter_child_nodes():
        yield from _loads(child, names, hidden, guarded)
