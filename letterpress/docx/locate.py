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


def variables(env, parts, prop_env, core) -> Dict[str, List[str]]:
    """Each field the ``parts`` (and document properties ``core``) use, with its places."""
    found: Dict[str, List[str]] = {}
    for part in (p for p in parts if p.dynamic):
        ast = part.parsed(env)
        names = meta.find_undeclared_variables(ast)
        for name, lineno in sorted(_loads(ast, names, frozenset()), key=lambda x: x[1]):
            place, text = describe(part, lineno, name)
            found.setdefault(name, []).append(f"{place}: {text}" if text else place)
        for name in sorted(names - set(found)):
            found[name] = [part.label or _("the body")]
    for _marker, label, _tpl, text in core[2] if core else ():
        for name in sorted(meta.find_undeclared_variables(prop_env.parse(text))):
            found.setdefault(name, []).append(label)
    return {name: list(dict.fromkeys(places)) for name, places in found.items()}


def _loads(node: nodes.Node, names: set, hidden: frozenset):
    """(name, line) for each use of a field in ``names``, skipping loop variables."""
    if isinstance(node, nodes.Name):
        if node.ctx == "load" and node.name in names and node.name not in hidden:
            yield node.name, node.lineno
        return
    if isinstance(node, nodes.For):
        inner = hidden | {n.name for n in node.target.find_all(nodes.Name)} | {"loop"}
        yield from _loads(node.iter, names, hidden)
        for child in [*node.body, *([node.test] if node.test else [])]:
            yield from _loads(child, names, inner)
        for child in node.else_:
            yield from _loads(child, names, hidden)
        return
    for child in node.iter_child_nodes():
        yield from _loads(child, names, hidden)
