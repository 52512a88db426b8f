"""Custom Jinja filters, globals and tests: docxtpl's ``jinja_env``, the safe way.

In the library they are given to the template directly::

    CompiledTemplate("letter.docx", filters={"yuan": lambda v: f"¥{v:,.2f}"})

From ``letterpress.toml`` they come from **plugin modules the staff installed**, named
in the file::

    [jinja]
    plugins = ["office_filters"]

A plugin is an installed Python package that declares an entry point in the group
``letterpress.jinja`` (in its ``pyproject.toml``:
``[project.entry-points."letterpress.jinja"] office_filters = "office_filters"``) whose
module has ``FILTERS``, ``GLOBALS`` and/or ``TESTS`` dictionaries. Only entry points of
that group can be named: a name in ``letterpress.toml`` never imports an arbitrary
module, and nothing uploaded (a template, a list, a settings file sent to the server)
can bring code. A plugin *is* code, run with the user's rights: install only what the
office trusts, as with any program. Templates themselves stay data: every environment is
sandboxed (:mod:`letterpress.docx.sandbox`), and the functions a plugin adds are called
with the values the template gives them.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from typing import Any, Callable, Iterable, Mapping, Optional, Tuple, TypeVar

import jinja2

from letterpress.errors import ConfigError, Where
from letterpress.i18n import _

GROUP = "letterpress.jinja"
E = TypeVar("E", bound=jinja2.Environment)
_KINDS = (("FILTERS", "filters"), ("GLOBALS", "globals"), ("TESTS", "tests"))


@dataclass(frozen=True)
class JinjaAdditions:
    """Filters, globals and tests added to every environment a template renders with."""

    filters: Tuple[Tuple[str, Callable], ...] = ()
    globals: Tuple[Tuple[str, Any], ...] = ()
    tests: Tuple[Tuple[str, Callable], ...] = ()
    plugins: Tuple[str, ...] = ()     # the plugin names they came from (to find them again)

    @classmethod
    def of(cls, filters: Optional[Mapping[str, Callable]] = None,
           globals: Optional[Mapping[str, Any]] = None,
           tests: Optional[Mapping[str, Callable]] = None) -> "JinjaAdditions":
        return cls(tuple((filters or {}).items()), tuple((globals or {}).items()),
                   tuple((tests or {}).items()))

    def __bool__(self) -> bool:
        return bool(self.filters or self.globals or self.tests)

    def apply(self, env: E) -> E:
        """``env`` with these added (the same object, for chaining). In an environment of
        :func:`letterpress.docx.sandbox.environment` the filters count their work against
        the letter's limits, as the built-in ones do."""
        from letterpress.docx import sandbox

        guard = getattr(sandbox, "_guard_filter", None)
        if guard is not None and isinstance(env, sandbox.Sandbox):
            env.filters.update((name, guard(name, f)) for name, f in self.filters)
        else:
            env.filters.update(self.filters)
        env.globals.update(self.globals)
        env.tests.update(self.tests)
        return env

    def merge(self, other: "JinjaAdditions") -> "JinjaAdditions":
        """These and ``other``'s (``other`` wins a name both have)."""
        return JinjaAdditions(tuple(dict(self.filters + other.filters).items()),
                              tuple(dict(self.globals + other.globals).items()),
                              tuple(dict(self.tests + other.tests).items()), self.plugins)

    def as_kwargs(self) -> dict:
        return {"filters": dict(self.filters), "globals": dict(self.globals),
                "tests": dict(self.tests)}


def additions_of(env: jinja2.Environment) -> JinjaAdditions:
    """The filters, globals and tests of docxtpl's ``jinja_env`` that Jinja itself lacks."""
    from jinja2.defaults import DEFAULT_FILTERS, DEFAULT_NAMESPACE, DEFAULT_TESTS

    def new(table: Mapping[str, Any], jinja_own: Mapping[str, Any]) -> Tuple[Tuple[str, Any], ...]:
        return tuple((k, v) for k, v in table.items() if jinja_own.get(k) is not v)
    return JinjaAdditions(new(env.filters, DEFAULT_FILTERS), new(env.globals, DEFAULT_NAMESPACE),
                          new(env.tests, DEFAULT_TESTS))


def available() -> Tuple[str, ...]:
    """The names of the installed plugins."""
    return tuple(sorted({ep.name for ep in metadata.entry_points(group=GROUP)}))


def load_plugins(names: Iterable[str], where: Optional[Where] = None) -> JinjaAdditions:
    """The filters, globals and tests of the plugins ``names`` (entry points of
    :data:`GROUP`); :class:`~letterpress.errors.ConfigError` for a name not installed."""
    names = tuple(dict.fromkeys(names))
    if not names:
        return JinjaAdditions()
    found = {ep.name: ep for ep in metadata.entry_points(group=GROUP)}
    out: dict = {"filters": {}, "globals": {}, "tests": {}}
    for name in names:
        entry = found.get(name)
        if entry is None:
            have = ", ".join(sorted(found)) or "none"
            raise ConfigError(
                _("the Jinja plugin %(name)r is not installed (installed: %(have)s)",
                  name=name, have=have),
                code="unknown_plugin", where=where or Where(),
                hint=_("install the package that provides it (pip install ...), or take the "
                       "name out of [jinja] plugins in letterpress.toml"))
        try:
            module = entry.load()
        except Exception as exc:  # noqa: BLE001 - the plugin's own failure, reported
            raise ConfigError(_("the Jinja plugin %(name)r could not be loaded (%(exc)s)",
                                name=name, exc=exc),
                              code="unknown_plugin", where=where or Where(),
                              hint=_("reinstall the plugin or ask whoever wrote it")) from exc
        for attribute, kind in _KINDS:
            table = getattr(module, attribute, None) or {}
            if not isinstance(table, Mapping):
                raise ConfigError(_("the Jinja plugin %(name)r has a %(attribute)s that is not "
                                    "a dictionary", name=name, attribute=attribute),
                                  code="unknown_plugin", where=where or Where())
            out[kind].update(table)
    additions = JinjaAdditions.of(out["filters"], out["globals"], out["tests"])
    return JinjaAdditions(additions.filters, additions.globals, additions.tests, names)
