"""docxtpl's own XML rewriting, without importing python-docx.

Letters must follow docxtpl's rules exactly, so its ``patch_xml`` (tags split across
Word runs, ``{%p %}``, ``{%tr %}``, ``{% vm %}``...), ``resolve_listing`` (``\\n``,
``\\t``, ``\\a`` and ``\\f`` in values) and ``fix_tables`` are used as they are. They
need nothing but ``re``, ``functools`` and lxml, yet importing docxtpl imports all of
python-docx, which takes longer than rendering a hundred letters. So the three
methods are compiled from the installed docxtpl's own source (``SOURCE`` says so);
should that ever fail (a docxtpl that moved or changed them), docxtpl is imported
and its methods are used directly (``SOURCE == "import"``).

    patch(xml) -> str      listing(xml) -> str      fix_tables(xml) -> lxml element
"""
from __future__ import annotations

import ast
import builtins
import functools
import importlib.util
import os
import re
import textwrap
from typing import Callable, Dict, Optional

from lxml import etree

_METHODS = ("patch_xml", "resolve_listing", "fix_tables")
_GLOBALS = {"re": re, "functools": functools, "etree": etree}


def _names(node: ast.AST) -> set:
    """Global names a function uses: loaded, never bound in it, not built in."""
    loaded, bound = set(), set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            (loaded if isinstance(n.ctx, ast.Load) else bound).add(n.id)
        elif isinstance(n, (ast.FunctionDef, ast.Lambda)):
            args = n.args
            bound.update(a.arg for a in args.posonlyargs + args.args + args.kwonlyargs)
            bound.update(a.arg for a in (args.vararg, args.kwarg) if a)
            if isinstance(n, ast.FunctionDef):
                bound.add(n.name)
        elif isinstance(n, ast.comprehension):
            bound.update(t.id for t in ast.walk(n.target) if isinstance(t, ast.Name))
    return loaded - bound - set(dir(builtins))


def _method_source(source: str, name: str) -> Optional[str]:
    """The text of ``DocxTemplate.<name>``: from its ``def`` to the next definition."""
    start = source.find(f"\n    def {name}(self")
    if start < 0:
        return None
    end = re.compile(r"^(?:    )?(?:def |async def |class |@)", re.M).search(source, start + 5)
    return textwrap.dedent(source[start + 1:end.start() if end else len(source)])


def _from_source() -> Optional[Dict[str, Callable]]:
    spec = importlib.util.find_spec("docxtpl")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], "template.py")
    with open(path, encoding="utf-8") as fh:
        source = fh.read()
    if "\nclass DocxTemplate(" not in source:
        return None
    namespace: dict = dict(_GLOBALS, __name__="docxtpl.template")
    out = {}
    for name in _METHODS:
        text = _method_source(source, name)
        tree = ast.parse(text, path) if text else None
        node = tree.body[0] if tree and len(tree.body) == 1 else None
        if not isinstance(node, ast.FunctionDef) or node.name != name or node.decorator_list \
                or _names(node) - set(_GLOBALS):
            return None
        exec(compile(tree, path, "exec"), namespace)
        out[name] = functools.partial(namespace[name], None)   # ``self`` is never used
    return out


def _from_import() -> Dict[str, Callable]:
    from docxtpl import DocxTemplate

    return {name: functools.partial(getattr(DocxTemplate, name), None) for name in _METHODS}


try:
    _found = _from_source()
except (OSError, SyntaxError, ValueError, TypeError):   # an unusual installation: import it
    _found = None
SOURCE = "docxtpl source" if _found else "import"
if _found is None:
    _found = _from_import()

patch: Callable[[str], str] = _found["patch_xml"]
listing: Callable[[str], str] = _found["resolve_listing"]
fix_tables: Callable[[str], "etree._Element"] = _found["fix_tables"]
