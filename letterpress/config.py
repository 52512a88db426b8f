"""``letterpress.toml`` plus defaults and command-line flags -> a frozen :class:`Settings`.

A config file looks like::

    [batch]
    title = "2020-02-24 青鱼嘴社区 慰问物资"
    org = "青鱼嘴社区志愿服务队"
    date = 2020-02-24
    package = "肉制品、蔬菜"
    lang = "zh"
    recipients = "recipients.xlsx"     # relative to this file
    template = "zh"                    # a built-in template name or a .docx path

    [columns]                          # extra header aliases for canonical fields
    name = ["户主", "老人姓名"]

    [context]                          # extra values for the template
    hotline = "027-8765 4321"

    [pictures]                         # pictures of the template swapped (docxtpl's replace_pic)
    "dummy.png" = "stamp.png"          # the same in every letter (relative to this file)
    "photo.png" = { column = "照片" }   # each household's own: a file named in that column

    [jinja]                            # filters from installed plugins (see templates/README.md)
    plugins = ["office_filters"]

Flags given on the command line win over the file; the file wins over defaults.
"""
from __future__ import annotations

import datetime as _dt
import os
import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping, Optional, Tuple

from letterpress.choices import DEFAULT_LANG, DEFAULT_LAYOUT, LANGS, LAYOUTS
from letterpress.errors import ConfigError, Where
from letterpress.i18n import _
from letterpress.models import CANONICAL_FIELDS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_PORT = 8470


@dataclass(frozen=True)
class Settings:
    """Everything a command needs to know, resolved once."""

    recipients: Optional[Path] = None
    template: Optional[str] = None          # built-in name ("zh", "en") or a path
    out: Optional[Path] = None
    title: str = ""
    org: str = ""
    date: Optional[_dt.date] = None
    package: str = ""
    lang: str = DEFAULT_LANG
    jobs: int = 1
    encoding: Optional[str] = None
    sheet: Optional[str] = None
    columns: Mapping[str, Tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    context: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    base_url: Optional[str] = None
    layout: Optional[str] = None            # None: not given (see slip_layout)
    db: Optional[str] = None
    font: Optional[Path] = None
    slip_fields: Tuple[str, ...] = ()
    qr_width_mm: float = 25.0
    pdf: bool = False                       # also make print-ready PDFs (needs LibreOffice)
    duplex: bool = False                    # pad each letter to an even page count
    quiet: bool = False
    config_file: Optional[Path] = None
    #: template picture name -> ("file", path) or ("column", header)
    pictures: Mapping[str, Tuple[str, str]] = field(default_factory=lambda: MappingProxyType({}))
    jinja_plugins: Tuple[str, ...] = ()
    engine: str = "auto"                    # "docxtpl": render every letter with docxtpl

    def with_(self, **changes: Any) -> "Settings":
        return replace(self, **changes)

    def __reduce__(self):
        """Settings sent to another process (read-only mappings travel as dicts)."""
        state = {f.name: getattr(self, f.name) for f in fields(self)}
        for key in _MAPPINGS:
            state[key] = dict(state[key])
        return (_settings_from, (state,))

    @property
    def slip_layout(self) -> str:
        """The slip layout to use: the one given, else the default (a4-4, larger slips, with
        the large-print letters)."""
        if self.layout:
            return self.layout
        return LARGE_PRINT_LAYOUT if self.template in LARGE_PRINT else DEFAULT_LAYOUT

    @property
    def batch_date(self) -> _dt.date:
        return self.date or _dt.date.today()


#: Settings fields held as read-only mappings.
_MAPPINGS = ("columns", "context", "pictures")


def _settings_from(state: dict) -> Settings:
    for key in _MAPPINGS:
        state[key] = MappingProxyType(state[key])
    return Settings(**state)


_BATCH_KEYS = {
    "title", "org", "date", "package", "lang", "recipients", "template", "out", "jobs",
    "encoding", "sheet", "base_url", "layout", "db", "font", "slip_fields", "qr_width_mm",
    "pdf", "duplex", "engine",
}
#: built-in letters printed large: their slips default to the a4-4 layout
LARGE_PRINT = ("zh-large", "en-large")
LARGE_PRINT_LAYOUT = "a4-4"
_PATH_KEYS = {"recipients", "out", "font"}


def parse_date(value: Any, where: Where = Where()) -> _dt.date:
    """A date from TOML (already a date) or text ``YYYY-MM-DD``."""
    if isinstance(value, _dt.datetime):
        return value.date()
    if isinstance(value, _dt.date):
        return value
    try:
        return _dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise ConfigError(
            _("%(value)r is not a date", value=value), code="bad_date", where=where,
            hint=_("write the date as YYYY-MM-DD, for example 2020-02-24"),
        ) from None


def load(config_file: Optional[Path] = None, **flags: Any) -> Settings:
    """Read ``config_file`` (if given, or ``letterpress.toml`` in the current folder)
    and apply ``flags`` (None values are ignored)."""
    values: dict = {}
    if config_file is None and Path("letterpress.toml").is_file():
        config_file = Path("letterpress.toml")
    if config_file is not None:
        values.update(_read_file(Path(config_file)))
        values["config_file"] = Path(config_file)
    for key, value in flags.items():
        if value is None or value == ():
            continue
        values[key] = value
    return _build(values)


def _read_file(path: Path) -> dict:
    where = Where(file=str(path))
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(_("config file %(path)s does not exist", path=path), code="no_config", where=where,
                          hint=_("check the path given to --config")) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(_("this is not valid TOML: %(exc)s", exc=exc), where=where,
                          hint=_("compare with examples/letterpress.toml")) from None
    base = path.resolve().parent
    out: dict = {}
    unknown_tables = set(data) - {"batch", "columns", "context", "pictures", "jinja"}
    if unknown_tables:
        raise ConfigError(
            _("unknown table(s) %(join)s", join=', '.join(sorted(unknown_tables))), where=where,
            hint=_("letterpress.toml has the tables [batch], [columns], [context], [pictures] "
                   "and [jinja]"),
        )
    out.update(_pictures_and_jinja(data, base, where))
    batch = data.get("batch", {})
    for key, value in batch.items():
        if key not in _BATCH_KEYS:
            raise ConfigError(
                _("unknown key %(key)r in [batch]", key=key), where=where,
                hint="known keys: " + ", ".join(sorted(_BATCH_KEYS)),
            )
        if key in _PATH_KEYS:
            value = base / Path(str(value)).expanduser()
        if key == "template" and (str(value).endswith(".docx") or os.sep in str(value)):
            value = str(base / Path(str(value)).expanduser())
        out[key] = value
    columns = {}
    for key, value in data.get("columns", {}).items():
        if key not in CANONICAL_FIELDS:
            raise ConfigError(
                _("[columns] names %(key)r, which is not a field", key=key), where=where,
                hint="fields: " + ", ".join(CANONICAL_FIELDS),
            )
        aliases = [value] if isinstance(value, str) else list(value)
        columns[key] = tuple(str(a).strip() for a in aliases)
    if columns:
        out["columns"] = columns
    if "context" in data:
        out["context"] = dict(data["context"])
    return out


def _pictures_and_jinja(data: dict, base: Path, where: Where) -> dict:
    """[pictures] and [jinja] of letterpress.toml."""
    out: dict = {}
    pictures = {}
    for name, value in data.get("pictures", {}).items():
        if isinstance(value, str) and value.strip():
            pictures[str(name)] = ("file", str(base / Path(value).expanduser()))
        elif isinstance(value, dict) and set(value) == {"column"} and str(value["column"]).strip():
            pictures[str(name)] = ("column", str(value["column"]).strip())
        else:
            raise ConfigError(
                _("[pictures] %(name)r must be a file or a column", name=name), where=where,
                hint=_("write %(file)s, or %(column)s", file='"dummy.png" = "stamp.png"',
                       column='"photo.png" = { column = "照片" }'))
    if pictures:
        out["pictures"] = pictures
    jinja = data.get("jinja", {})
    if set(jinja) - {"plugins"}:
        raise ConfigError(_("unknown key(s) in [jinja]: %(keys)s",
                            keys=", ".join(sorted(set(jinja) - {"plugins"}))),
                          where=where, hint=_("[jinja] has one key: %(example)s",
                                              example='plugins = ["name", ...]'))
    plugins = jinja.get("plugins", [])
    if isinstance(plugins, str):
        plugins = [plugins]
    if not isinstance(plugins, list) or not all(isinstance(p, str) for p in plugins):
        raise ConfigError(_("[jinja] plugins must be a list of names"), where=where,
                          hint=_("for example %(example)s", example='plugins = ["office_filters"]'))
    if plugins:
        out["jinja_plugins"] = tuple(plugins)
    return out


def _build(values: dict) -> Settings:
    where = Where(file=str(values.get("config_file") or "")) if values.get("config_file") else Where()
    kwargs: dict = {}
    names = {f.name for f in fields(Settings)}
    for key, value in values.items():
        if key not in names:
            continue
        kwargs[key] = value
    if "date" in kwargs and kwargs["date"] is not None:
        kwargs["date"] = parse_date(kwargs["date"], where)
    for key in ("recipients", "out", "font"):
        if kwargs.get(key) is not None:
            kwargs[key] = Path(kwargs[key])
    if kwargs.get("template") is not None:
        kwargs["template"] = str(kwargs["template"])
    if "lang" not in kwargs and kwargs.get("template") in LANGS + LARGE_PRINT:
        # the built-in English letters speak English
        kwargs["lang"] = str(kwargs["template"]).split("-")[0]
    lang = kwargs.get("lang", DEFAULT_LANG)
    if lang not in LANGS:
        raise ConfigError(_("unknown language %(lang)r", lang=lang), where=where,
                          hint=_("use one of %(choices)s", choices=", ".join(LANGS)))
    layout = kwargs.get("layout")
    if layout is not None and layout not in LAYOUTS:
        raise ConfigError(_("unknown slip layout %(layout)r", layout=layout), where=where,
                          hint=_("use one of %(choices)s", choices=", ".join(LAYOUTS)))
    try:
        jobs = int(kwargs.get("jobs", 1))
    except (TypeError, ValueError):
        raise ConfigError(_("jobs must be a whole number"), where=where) from None
    kwargs["jobs"] = max(1, jobs)
    if "slip_fields" in kwargs:
        sf = kwargs["slip_fields"]
        if isinstance(sf, str):
            sf = [s for s in sf.replace(",", " ").split() if s]
        kwargs["slip_fields"] = tuple(sf)
    if "columns" in kwargs:
        kwargs["columns"] = MappingProxyType(dict(kwargs["columns"]))
    if "context" in kwargs:
        kwargs["context"] = MappingProxyType(dict(kwargs["context"]))
    if "pictures" in kwargs:
        kwargs["pictures"] = MappingProxyType(dict(kwargs["pictures"]))
    if kwargs.get("engine", "auto") not in ("auto", "docxtpl"):
        raise ConfigError(_("unknown engine %(engine)r", engine=kwargs["engine"]), where=where,
                          hint=_("use one of %(choices)s", choices="auto, docxtpl"))
    if kwargs.get("base_url"):
        kwargs["base_url"] = str(kwargs["base_url"]).rstrip("/")
    if kwargs.get("db") is None and os.environ.get("LETTERPRESS_DB"):
        kwargs["db"] = os.environ["LETTERPRESS_DB"]
    return Settings(**kwargs)
