"""Pictures swapped into letters: ``[pictures]`` in letterpress.toml and picture columns.

A template holds a dummy picture (an office stamp, a logo, a photo frame) that Word
names, e.g. ``dummy.png``. ``[pictures]`` says what replaces it: one file for every
letter, or ``{ column = "照片" }``, a column of the recipient list naming each
household's own file. The check comes first and reports every problem at once:

- the picture must be in the template (its name, title or description, as docxtpl's
  ``replace_pic``);
- a column file is a path relative to the recipient list's folder and must stay inside
  it (no ``..``, no absolute path elsewhere, no link leading out): a list from outside
  cannot make letterpress read other files;
- every file must be a real picture, known by its content (PNG, JPEG, GIF or BMP, at most
  10 MB), not by its name. One in another format than the dummy is converted to it.
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from letterpress.errors import Problem, Where, error, warning
from letterpress.i18n import _

MAX_BYTES = 10 * 1024 * 1024
_FORMATS = {"PNG": "png", "JPEG": "jpg", "GIF": "gif", "BMP": "bmp"}
_EXT_FORMAT = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "gif": "GIF", "bmp": "BMP"}


@dataclass(frozen=True)
class PictureRule:
    """One line of ``[pictures]``: the template's picture, and a file or a column."""

    name: str
    kind: str     # "file" or "column"
    value: str


def rules(table: Mapping[str, Tuple[str, str]]) -> Tuple[PictureRule, ...]:
    return tuple(PictureRule(name, kind, value) for name, (kind, value) in table.items())


class PictureProblem(Exception):
    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


def inside(folder: Path, value: str) -> Path:
    """``value`` as a path inside ``folder`` (PictureProblem if it leads out)."""
    text = value.strip().replace("\\", "/")
    path = Path(text).expanduser()
    root = folder.resolve()
    full = (path if path.is_absolute() else root / path).resolve()
    if full != root and root not in full.parents:
        raise PictureProblem(_("%(value)r is outside the recipient list's folder", value=value),
                             _("put the pictures in the list's folder (or a folder in it) and "
                               "write the path relative to it, e.g. photos/0001.jpg"))
    return full


def picture_bytes(path: Path, want_ext: Optional[str] = None) -> bytes:
    """The file's bytes once they are known to be a picture, in the format ``want_ext``."""
    from PIL import Image, UnidentifiedImageError

    try:
        size = path.stat().st_size
    except OSError:
        raise PictureProblem(_("%(file)s does not exist", file=path.name),
                             _("check the file name (and its folder)")) from None
    if size > MAX_BYTES:
        raise PictureProblem(_("%(file)s is larger than 10 MB", file=path.name),
                             _("make the picture smaller (a stamp or photo needs far less)"))
    data = path.read_bytes()
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
        with Image.open(io.BytesIO(data)) as image:
            fmt = image.format
            if fmt not in _FORMATS:
                raise PictureProblem(_("%(file)s is a %(format)s picture", file=path.name,
                                       format=fmt), _("save it as PNG or JPEG"))
            want = _EXT_FORMAT.get((want_ext or "").lower())
            if want and want != fmt:   # the dummy's format: Word reads it by its name
                image.load()
                out = io.BytesIO()
                (image.convert("RGB") if want == "JPEG" else image).save(out, want)
                return out.getvalue()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise PictureProblem(_("%(file)s is not a picture (its content is not PNG, JPEG, GIF "
                               "or BMP)", file=path.name), _("give a PNG or JPEG file")) from None
    return data


def dummy_ext(template, name: str) -> Optional[str]:
    """The file name extension of the template's picture ``name`` (None: not there)."""
    loaded = template.loaded
    if loaded is None:
        return name.rpartition(".")[2] if "." in name else ""
    members = loaded.pictures.get(name)
    return members[0].rpartition(".")[2] if members else None


def check(template, picture_rules: Sequence[PictureRule], recipients, headers: Sequence[str],
          list_dir: Path, template_name: str, source: str) -> List[Problem]:
    """Every problem of ``[pictures]`` and the picture columns, at once."""
    problems: List[Problem] = []
    for rule in picture_rules:
        where = Where(file=template_name)
        ext = dummy_ext(template, rule.name)
        if ext is None:
            names = sorted(template.loaded.pictures) if template.loaded else []
            problems.append(error(
                "picture_not_found", _("[pictures] names %(name)r, which is not a picture in "
                                       "the template", name=rule.name), where,
                _("use the name Word gives the picture (Alt Text or the Selection Pane): "
                  "%(names)s", names=", ".join(names) or "-")))
            continue
        if rule.kind == "file":
            try:
                picture_bytes(Path(rule.value), ext)
            except PictureProblem as exc:
                problems.append(error("bad_picture", _("[pictures] %(name)r: %(problem)s",
                                                       name=rule.name, problem=exc),
                                      Where(file=rule.value), exc.hint))
            continue
        if rule.value not in headers:
            problems.append(error(
                "unknown_column", _("[pictures] %(name)r takes the column %(column)r, which the "
                                    "recipient list does not have", name=rule.name,
                                    column=rule.value), Where(file=source),
                _("add the column, or correct its name in letterpress.toml")))
            continue
        empty = []
        for r in recipients:
            value = r.columns.get(rule.value, "").strip()
            if not value:
                empty.append(r.row)
                continue
            try:
                picture_bytes(inside(list_dir, value), ext)
            except PictureProblem as exc:
                problems.append(error("bad_picture", str(exc), Where(file=source, row=r.row,
                                                                     column=rule.value), exc.hint))
        if empty:
            rows = ", ".join(map(str, empty[:10])) + (" …" if len(empty) > 10 else "")
            problems.append(warning(
                "empty_picture", _("no picture in column %(column)r in row(s) %(rows)s: those "
                                   "letters keep the template's picture", column=rule.value,
                                   rows=rows), Where(file=source, column=rule.value),
                _("fill the cells, or leave them if the template's picture is fine")))
    return problems


class Swapper:
    """Applies ``[pictures]`` to a template before each letter."""

    def __init__(self, picture_rules: Sequence[PictureRule], list_dir: Optional[str]) -> None:
        self.rules, self.list_dir = tuple(picture_rules), Path(list_dir or ".")
        self._batch: Dict[str, bytes] = {}

    def apply(self, template, columns: Mapping[str, str]) -> None:
        if not self.rules:
            return
        template.reset_replacements()
        for rule in self.rules:
            ext = dummy_ext(template, rule.name)
            if rule.kind == "file":
                if rule.name not in self._batch:
                    self._batch[rule.name] = picture_bytes(Path(rule.value), ext)
                template.replace_pic(rule.name, self._batch[rule.name])
                continue
            value = columns.get(rule.value, "").strip()
            if value:
                template.replace_pic(rule.name,
                                     picture_bytes(inside(self.list_dir, value), ext))


def list_folder(source: Optional[str]) -> str:
    return os.path.dirname(os.path.abspath(source)) if source else os.getcwd()
