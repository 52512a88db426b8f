"""docxtpl's own XML rewriting, without importing python-docx.

Letters must follow docxtpl's rules exactly, so its ``patch_xml`` (tags split across
Word runs, ``{%p %}``, ``{%tr %}``, ``{% vm %}``...), ``resolve_listing`` (``\\n``,
``\\t``, ``\\a`` and ``\\f`` in values) and ``fix_tables`` are used as they are. They
need nothing but ``re``, ``functools`` and lxml, yet importing docxtpl imports all of
python-docx, which takes longer than rendering a hundred letters. So the three
methods are compiled from the installed docxtpl's own source, keeping its file name
and line numbers (``SOURCE == "docxtpl source"``); a name they use that we do not
give them comes from docxtpl's module, imported then. Should the methods not be
found (a docxtpl that moved them), docxtpl is imported and its methods are used
directly (``SOURCE == "import"``).

    patch(xml) -> str      listing(xml) -> str      fix_tables(xml) -> lxml element
"""
from __future__ import annotations

import builtins
import functools
import importlib.util
import os
import re
import textwrap
import types
from typing import Callable, Dict, Optional

from lxml import etree

_METHODS = ("patch_xml", "resolve_listing", "fix_tables")
_GLOBALS = {"re": re, "functools": functools, "etree": etree}


class _Globals(dict):
    """The methods' globals: ``re``, ``functools`` and ``etree``; should they ever need
    another name, it is taken from docxtpl's own module (imported then, not before)."""

    def __missing__(self, name: str):
        if not hasattr(builtins, name):
            import docxtpl.template

            if hasattr(docxtpl.template, name):
                return getattr(docxtpl.template, name)
        raise KeyError(name)


def _method_code(source: str, name: str, path: str):
    """``DocxTemplate.<name>`` compiled from its ``def`` to the next definition (keeping
    its line numbers, so that a traceback points into docxtpl's file)."""
    start = source.find(f"\n    def {name}(self")
    if start < 0:
        return None
    end = re.compile(r"^(?:    )?(?:def |async def |class |@)", re.M).search(source, start + 5)
    text = textwrap.dedent(source[start + 1:end.start() if end else len(source)])
    module = compile("\n" * source.count("\n", 0, start + 1) + text, path, "exec")
    codes = [c for c in module.co_consts if hasattr(c, "co_code")]
    return codes[0] if len(codes) == 1 and codes[0].co_name == name else None


def _from_source() -> Optional[Dict[str, Callable]]:
    spec = importlib.util.find_spec("docxtpl")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], "template.py")
    with open(path, encoding="utf-8") as fh:
        source = fh.read()
    if "\nclass DocxTemplate(" not in source:
        return None
    namespace = _Globals(_GLOBALS, __name__="docxtpl.template", __builtins__=builtins)
    out: Dict[str, Callable] = {}
    for name in _METHODS:
        code = _method_code(source, name, path)
        if code is None:
            return None
        function = types.FunctionType(code, namespace, name)
        out[name] = functools.partial(function, None)   # ``self`` is never used
    return out


def _from_import() -> Dict[str, Callable]:
    from docxtpl import DocxTemplate

    return {name: functools.partial(getattr(DocxTemplate, name), None) for name in _METHODS}


try:
    _found = _from_source()
except (OSError, SyntaxError, ValueError, TypeError, IndexError):   # an unusual installation
    _found = None
SOURCE = "docxtpl source" if _found else "import"
if _found is None:
    _found = _from_import()

patch: Callable[[str], str] = _found["patch_xml"]
listing: Callable[[str], str] = _found["resolve_listing"]
fix_tables: Callable[[str], "etree._Element"] = _found["fix_tables"]
