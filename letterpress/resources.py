"""Built-in templates and the demo batch, wherever letterpress is installed."""
from __future__ import annotations

from pathlib import Path

from letterpress.errors import InputError
from letterpress.i18n import _

_HERE = Path(__file__).resolve().parent
#: Built-in letters: ``zh``/``en``, and ``zh-large``/``en-large`` in large print (18 pt,
#: 1.5 line spacing, black on white) for elderly readers.
BUILTIN_TEMPLATES = {"zh": "letter-zh.docx", "en": "letter-en.docx",
                     "zh-large": "letter-zh-large.docx", "en-large": "letter-en-large.docx"}


def _data_dir(installed: str, folder: str) -> Path:
    """The folder installed inside the package, or the source checkout's top-level folder."""
    inside = _HERE / installed
    return inside if inside.is_dir() else _HERE.parent / folder


def templates_dir() -> Path:
    return _data_dir("builtin_templates", "templates")


def examples_dir() -> Path:
    return _data_dir("builtin_examples", "examples")


def resolve_template(name_or_path: str | None, lang: str = "zh") -> Path:
    """A template path from ``--template``: a built-in name (``zh``, ``en``, ``zh-large``,
    ``en-large``) or a .docx path."""
    if not name_or_path:
        name_or_path = lang
    if name_or_path in BUILTIN_TEMPLATES:
        return templates_dir() / BUILTIN_TEMPLATES[name_or_path]
    path = Path(name_or_path).expanduser()
    if not path.is_file():
        raise InputError(
            _("template %(name)s does not exist", name=name_or_path), code="no_template",
            hint=_("give the path of a .docx file, or a built-in template: %(names)s",
                   names=", ".join(BUILTIN_TEMPLATES)),
        )
    return path
