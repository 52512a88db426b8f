"""Find every error code the library can raise, by reading its source (tests only).

A code is found where the source names it literally:

- ``SomeError(..., code="x")`` and any other call with a ``code="x"`` keyword;
- ``SomeError(...)`` without ``code=`` where ``SomeError`` is a LetterpressError subclass:
  the class's own ``code = "x"`` (inherited from its nearest base that sets one);
- ``error("x", ...)``, ``warning("x", ...)``, ``Problem(severity, "x", ...)``,
  ``problem(file, "x", ...)`` and
  ``self._problem("x", ...)``, the helpers that make :class:`Problem` records and template errors.

Places that pass on a code they were given (``code=code``) are listed in ``PASS_THROUGH``;
any other place where a code is not a literal is reported, so that no code escapes the scan.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

PACKAGE = Path(__file__).resolve().parent.parent / "letterpress"

#: Functions that only pass on a code given to them by their caller (which the scan sees).
PASS_THROUGH = {
    ("docx/locate.py", "problem"),             # problem(file, code, ...)
    ("docx/template.py", "_problem"),          # self._problem(code, ...)
    ("recipients/clean.py", "_row_problems"),  # error(code, ...) with check_phone()'s code
    ("pipeline/letters.py", "check_safety"),   # error(exc.code, ...) of a sandbox problem
}

@dataclass(frozen=True)
class Use:
    code: str
    file: str
    line: int


def _name(func: ast.expr) -> Optional[str]:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _str(node: Optional[ast.expr]) -> Optional[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _modules() -> List[Tuple[str, ast.Module]]:
    return [(p.relative_to(PACKAGE).as_posix(), ast.parse(p.read_text(encoding="utf-8")))
            for p in sorted(PACKAGE.rglob("*.py"))]


def error_classes(modules) -> Dict[str, Optional[str]]:
    """Every LetterpressError subclass by name -> its default code (own or inherited)."""
    bases: Dict[str, List[str]] = {}
    own: Dict[str, str] = {}
    for _, tree in modules:
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                bases[node.name] = [n for n in map(_name, node.bases) if n]
                for stmt in node.body:
                    if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                            and isinstance(stmt.targets[0], ast.Name)
                            and stmt.targets[0].id == "code" and _str(stmt.value)):
                        own[node.name] = _str(stmt.value)

    def is_error(name: str, seen=()) -> bool:
        return name == "LetterpressError" or any(
            b not in seen and is_error(b, seen + (name,)) for b in bases.get(name, []))

    def default(name: str) -> Optional[str]:
        if name in own:
            return own[name]
        for b in bases.get(name, []):
            found = default(b)
            if found:
                return found
        return None

    return {name: default(name) for name in bases if is_error(name)}


def scan(pass_through=None) -> Tuple[List[Use], List[str]]:
    """``(uses, unknown)``: every literal code and where; places whose code is not a literal
    (other than those of ``pass_through``, by default :data:`PASS_THROUGH`)."""
    allowed = PASS_THROUGH if pass_through is None else pass_through
    modules = _modules()
    classes = error_classes(modules)
    uses: List[Use] = []
    unknown: List[str] = []
    for file, tree in modules:
        helpers = _helpers(tree)
        for func in [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))] + [tree]:
            owner = getattr(func, "name", "<module>")
            body = func.body if owner != "<module>" else [
                n for n in tree.body if not isinstance(n, (ast.FunctionDef, ast.ClassDef))]
            for stmt in body:
                for call in _calls(stmt):
                    _scan_call(call, file, owner, classes, helpers, uses, unknown, allowed)
    return uses, unknown


def _calls(stmt: ast.AST):
    """Calls in ``stmt``, not descending into nested functions (scanned on their own)."""
    todo = [stmt]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Call):
            yield node
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                todo.append(child)


def _helpers(tree: ast.Module) -> Dict[str, int]:
    """The Problem helpers this module uses: its own import of ``error``, ``warning`` or
    ``Problem`` from letterpress.errors (the server's JSON ``error()`` is another function), ``problem``
    and ``self._problem``."""
    names = {"problem": 1, "_problem": 0}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module == "letterpress.errors":
            names.update({a.asname or a.name: 1 if a.name == "Problem" else 0
                          for a in node.names if a.name in ("error", "warning", "Problem")})
    return names


def _literals(node: Optional[ast.expr]) -> Optional[List[str]]:
    """``"x"`` -> ["x"]; ``"x" if c else "y"`` -> ["x", "y"]; anything else -> None."""
    if isinstance(node, ast.IfExp):
        a, b = _literals(node.body), _literals(node.orelse)
        return a + b if a is not None and b is not None else None
    text = _str(node)
    return [text] if text is not None else None


def _scan_call(call: ast.Call, file: str, owner: str, classes, helpers, uses, unknown,
               allowed) -> None:
    name = _name(call.func)
    if isinstance(call.func, ast.Attribute) and name != "_problem":
        name = None if name not in classes else name     # logger.warning(...) is no helper
    where = f"{file}:{call.lineno} ({owner})"
    keyword = next((k.value for k in call.keywords if k.arg == "code"), None)
    if name in classes:
        if keyword is None:
            code = classes[name]
            if code:
                uses.append(Use(code, file, call.lineno))
            return
    elif name in helpers and keyword is None:
        index = helpers[name]
        if len(call.args) <= index:
            return
        keyword = call.args[index]
    elif keyword is None or not isinstance(keyword, ast.Constant):
        return                                 # url_for(..., code=x), dict(code=x): not errors
    found = _literals(keyword)
    if found is not None:
        uses += [Use(code, file, call.lineno) for code in found]
    elif (file, owner) not in allowed:
        unknown.append(where)


def codes_compared(modules=None) -> List[Use]:
    """Codes the library tests for: ``exc.code == "x"``, ``exc.code in ("x", "y")``."""
    found = []
    for file, tree in modules or _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare) and isinstance(node.left, ast.Attribute) \
                    and node.left.attr == "code" and _name(node.left.value) in ("exc", "err", "error"):
                for right in node.comparators:
                    items = right.elts if isinstance(right, (ast.Tuple, ast.List, ast.Set)) else [right]
                    found += [Use(t, file, node.lineno) for i in items for t in [_str(i)] if t]
    return found


def codes() -> Set[str]:
    return {u.code for u in scan()[0]}
