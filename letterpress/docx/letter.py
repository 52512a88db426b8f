"""A rendered letter as plain data, and writing it.

:class:`RenderedLetter` is what :meth:`CompiledTemplate.render
<letterpress.docx.template.CompiledTemplate.render>` returns: picklable, so a worker
process can render and the main process write or merge it.
"""
from __future__ import annotations

import os
import weakref
from typing import TYPE_CHECKING, Optional

from letterpress.docx import fallback
from letterpress.files import PathLike, atomic_path

if TYPE_CHECKING:
    from letterpress.docx.load import Loaded
    from letterpress.docx.template import CompiledTemplate

#: The templates loaded in this process, by key (a letter finds its own after unpickling).
_LIVE: "weakref.WeakValueDictionary[str, CompiledTemplate]" = weakref.WeakValueDictionary()


class RenderedLetter:
    """One rendered letter, as plain data (picklable: a worker process can render and
    the main process write or merge it).

    ``pieces`` is the body; ``parts`` holds the other rendered parts as (name, pieces).
    Pieces are strings, and numbers standing for pieces of the template that are
    stored ready-compressed. ``rels`` are the relationships the letter adds (part, rId,
    type, target, external), ``media`` its images (part name, bytes) and ``replaced``
    the template's members it swaps (docxtpl's ``replace_pic``...: member, bytes).
    ``whole`` is the whole .docx of a letter docxtpl rendered (see ``fallback_reason``).
    """

    __slots__ = ("key", "pieces", "parts", "rels", "media", "replaced", "whole", "loaded",
                 "_template")

    def __init__(self, key: str, pieces: tuple, parts: tuple = (), rels: tuple = (),
                 media: tuple = (), template: Optional["CompiledTemplate"] = None,
                 replaced: tuple = (), loaded: Optional[Loaded] = None,
                 whole: Optional[bytes] = None) -> None:
        self.key, self.pieces, self.parts, self.rels, self.media = key, pieces, parts, rels, media
        self.replaced, self.loaded, self.whole = replaced, loaded, whole
        self._template = template

    def __reduce__(self):
        return (RenderedLetter, (self.key, self.pieces, self.parts, self.rels, self.media, None,
                                 self.replaced, None, self.whole))

    def template(self, template: Optional["CompiledTemplate"] = None) -> "CompiledTemplate":
        """The template this letter came from (found by its key after unpickling)."""
        found = template or self._template or _LIVE.get(self.key)
        if found is None or found.key != self.key:
            raise ValueError("this letter's template is not loaded in this process; pass it")
        return found

    @property
    def body(self) -> str:
        """The letter's body XML (the content of ``<w:body>``)."""
        if self.whole is not None:
            return fallback.body_of(self.whole)
        loaded = self.loaded or self.template().fast_loaded
        return loaded.body.text(self.pieces)[8:-9]

    def to_bytes(self, template: Optional["CompiledTemplate"] = None) -> bytes:
        """The letter as a complete .docx file."""
        if self.whole is not None:
            return self.whole
        return b"".join(self.template(template)._zip(self))

    def save(self, path: PathLike, template: Optional["CompiledTemplate"] = None) -> None:
        """Write the .docx to ``path`` (atomically: a temporary name, then a rename)."""
        data = self.to_bytes(template)
        with atomic_path(path) as tmp:
            write_file(tmp, data)


def write_file(path: PathLike, data: bytes) -> None:
    """Write ``data`` to a new or truncated file with as few system calls as may be."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)
                 | getattr(os, "O_CLOEXEC", 0), 0o600)   # owner-only: it holds personal data
    try:
        view, done = memoryview(data), 0
        while done < len(data):
            done += os.write(fd, view[done:])
    finally:
        os.close(fd)
