"""Which language to speak, and the text in it, from gettext catalogues.

Messages are written in English in the code and marked for extraction::

    from letterpress.i18n import _, ngettext, pgettext, N_

    _("row %(row)d: no name", row=5)
    ngettext("%(num)d household", "%(num)d households", n)
    pgettext("outcome", "Delivered")        # same English, a different Chinese
    HELP = N_("Output folder.")             # marked only; translate later with _(HELP)

Placeholders are named (``%(name)s``) so a translation can put them in another order;
``_()`` fills them from its keyword arguments. The Chinese lives in
``letterpress/locale/zh/LC_MESSAGES/letterpress.po`` (a Babel/gettext catalogue, read at
run time: no compile step); ``make catalogues`` extracts new messages into it.

The language is chosen per context: the CLI takes it from the environment
(:func:`lang_from_env`), the web app per request (:func:`lang_for_request`), and a
background job with :func:`using`. Outside any choice the environment decides.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import gettext as _gettext
import io
import os
from pathlib import Path
from typing import Iterator, Mapping, Optional

from letterpress.choices import DEFAULT_LANG, LANGS  # noqa: F401  (zh, en; Chinese first)

#: gettext domain: the catalogue is locale/<lang>/LC_MESSAGES/letterpress.po
DOMAIN = "letterpress"
#: Where the catalogues are (inside the package, so wheels and editable installs both have it).
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
#: The environment variable that overrides the locale for letterpress alone.
ENV_VAR = "LETTERPRESS_LANG"

_current: contextvars.ContextVar[Optional[str]] = contextvars.ContextVar(
    "letterpress_lang", default=None)


def normalise(value: Optional[str]) -> Optional[str]:
    """``"zh"`` for zh, zh-CN, zh_TW.UTF-8...; ``"en"`` for en...; None for anything else."""
    value = (value or "").strip().lower()
    if value.startswith("zh"):
        return "zh"
    if value.startswith("en"):
        return "en"
    return None


def lang_from_env(environ: Optional[Mapping[str, str]] = None) -> str:
    """The CLI's language: ``LETTERPRESS_LANG`` (zh or en), else the locale's messages language.

    The locale is the first one set of ``LC_ALL``, ``LC_MESSAGES``, ``LANG`` (the POSIX order);
    a value starting with ``zh`` means Chinese whether or not that locale is installed.
    """
    env = os.environ if environ is None else environ
    chosen = normalise(env.get(ENV_VAR))
    if chosen:
        return chosen
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(name)
        if value:
            return "zh" if value.strip().lower().startswith("zh") else "en"
    return "en"


def lang_for_request(switch: Optional[str], cookie: Optional[str], accept,
                     default: str = DEFAULT_LANG) -> str:
    """A page's language: the ``?lang=`` switch, the remembered cookie, then the browser.

    ``accept`` is werkzeug's ``request.accept_languages``: zh-* gives Chinese, any other
    language English. With no Accept-Language at all, ``default`` (Chinese for pages, the
    staff's language; the JSON API passes English for programs).
    """
    for value in (switch, cookie):
        if value in LANGS:
            return value
    if accept:
        best = accept.best_match(LANGS)
        return best if best in LANGS else "en"
    return default


def current_lang() -> str:
    """The language of this context: set by :func:`set_lang`/:func:`using`, else the env's."""
    return _current.get() or lang_from_env()


def set_lang(lang: Optional[str]) -> contextvars.Token:
    """Speak ``lang`` (zh or en; None: back to the environment) in this context."""
    if lang is not None and lang not in LANGS:
        raise ValueError(f"unknown language {lang!r}; letterpress speaks {', '.join(LANGS)}")
    return _current.set(lang)


def reset_lang(token: contextvars.Token) -> None:
    _current.reset(token)


@contextlib.contextmanager
def using(lang: Optional[str]) -> Iterator[str]:
    """``with using("zh"): ...`` speaks Chinese inside the block (threads: set it in each)."""
    token = set_lang(lang)
    try:
        yield current_lang()
    finally:
        _current.reset(token)


def catalogue_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


@functools.lru_cache(maxsize=None)
def translations(lang: str) -> _gettext.NullTranslations:
    """The gettext translations of ``lang``, read once from its ``.po`` catalogue.

    English is the code's own text. Fuzzy entries are not used. A missing catalogue
    falls back to English rather than failing: a user must never lose a message.
    """
    if lang == "en":
        return _gettext.NullTranslations()
    path = catalogue_path(lang)
    if not path.is_file():
        return _gettext.NullTranslations()
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with open(path, "rb") as fh:
        catalog = read_po(fh, locale=lang, domain=DOMAIN)
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return _gettext.GNUTranslations(buf)


def _fill(text: str, values: Mapping[str, object]) -> str:
    return text % values if values else text


def gettext(message: str, /, **values: object) -> str:
    """``message`` in the current language, with its ``%(name)s`` placeholders filled."""
    return _fill(translations(current_lang()).gettext(message), values)


def ngettext(singular: str, plural: str, num: int, /, **values: object) -> str:
    """The singular or plural form for ``num``; ``%(num)d`` is filled with it."""
    values.setdefault("num", num)
    return _fill(translations(current_lang()).ngettext(singular, plural, num), values)


def pgettext(context: str, message: str, /, **values: object) -> str:
    """Like :func:`gettext`, for a short word whose translation depends on ``context``."""
    return _fill(translations(current_lang()).pgettext(context, message), values)


def stage_label(stage: str) -> str:
    """A progress stage as a user reads it (the stage names are the library's, as in the JSON
    API); file names such as ``letters.pdf`` stay as they are."""
    labels = {"letters": pgettext("stage", "letters"), "slips": pgettext("stage", "slips"),
              "run sheets": pgettext("stage", "run sheets"),
              "print packs": pgettext("stage", "print packs"), "pdf": pgettext("stage", "PDF"),
              "preview": pgettext("stage", "preview")}
    return labels.get(stage, stage)


def N_(message: str) -> str:
    """Mark ``message`` for the catalogue without translating it yet (module constants)."""
    return message


_ = gettext


def raw_gettext(message: str) -> str:
    """The translation alone, placeholders untouched (for Jinja, which fills them itself)."""
    return translations(current_lang()).gettext(message)


def raw_ngettext(singular: str, plural: str, num: int) -> str:
    return translations(current_lang()).ngettext(singular, plural, num)


def raw_pgettext(context: str, message: str) -> str:
    return translations(current_lang()).pgettext(context, message)


def raw_npgettext(context: str, singular: str, plural: str, num: int) -> str:
    return translations(current_lang()).npgettext(context, singular, plural, num)
