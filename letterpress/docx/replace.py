"""docxtpl's replacements of a template's members: a dummy picture swapped for the real one.

``replace_pic(name, new)`` swaps the picture Word calls ``name`` (its name, title or
description: "Picture 1", "dummy.png"...), ``replace_media(old, new)`` a picture found
by its content, ``replace_embedded(old, new)`` an embedded file found by its content and
``replace_zipname(member, new)`` any member by its name in the zip. As in docxtpl, the
picture keeps the size and place of the one it replaces, and replacements hold for every
letter rendered after them, until :meth:`Replacements.reset`.

A letter carries what was replaced when it was rendered (``RenderedLetter.replaced``), so
that its own file and the merged document show its own pictures.
"""
from __future__ import annotations

import binascii
import os
from typing import IO, Dict, Optional, Tuple, Union

from letterpress.errors import TemplateProblemError, Where
from letterpress.i18n import _

Source = Union[str, "os.PathLike[str]", IO[bytes], bytes]


def read(source: Source) -> bytes:
    """The bytes of a path, a file object or bytes."""
    if isinstance(source, (bytes, bytearray)):
        return bytes(source)
    if hasattr(source, "read"):
        data = source.read()
        return data.encode("utf-8") if isinstance(data, str) else bytes(data)
    with open(source, "rb") as fh:
        return fh.read()


class Replacements:
    """What docxtpl's ``replace_*`` methods asked for, until :meth:`reset`."""

    def __init__(self) -> None:
        self.pics: Dict[str, bytes] = {}
        self.media: Dict[int, bytes] = {}        # CRC-32 of the old content -> new bytes
        self.embedded: Dict[int, bytes] = {}
        self.zipnames: Dict[str, bytes] = {}
        self.allow_missing_pics = False
        self._cache: Optional[tuple] = None

    def __bool__(self) -> bool:
        return bool(self.pics or self.media or self.embedded or self.zipnames)

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_cache"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _cache=None)

    def reset(self) -> None:
        self.pics, self.media, self.embedded, self.zipnames = {}, {}, {}, {}
        self._cache = None

    def pic(self, name: str, new: Source) -> None:
        self.pics[name] = read(new)
        self._cache = None

    def by_content(self, table: str, old: Source, new: Source) -> None:
        crc = binascii.crc32(read(old)) & 0xFFFFFFFF
        getattr(self, table)[crc] = read(new)
        self._cache = None

    def zipname(self, name: str, new: Source) -> None:
        self.zipnames[name] = read(new)
        self._cache = None

    def resolve(self, loaded, template_name: str) -> Tuple[Tuple[str, bytes], ...]:
        """(member, new bytes) for a letter rendered now, as docxtpl would replace them."""
        if not self:
            return ()
        if self._cache is not None and self._cache[0] is loaded:
            return self._cache[1]
        crcs = {m.name: m.crc for m, _ in loaded.static}
        out: Dict[str, bytes] = {}
        for name, data in self.pics.items():
            members = loaded.pictures.get(name)
            if not members and not self.allow_missing_pics:
                raise TemplateProblemError(
                    _("the picture %(name)r is not in the template", name=name),
                    code="picture_not_found", where=Where(file=template_name),
                    hint=_("give the name Word shows for the picture (Format Picture > Alt "
                           "Text, or the name in the Selection Pane), or the file name the "
                           "picture had when it was inserted: %(names)s",
                           names=", ".join(sorted(loaded.pictures)) or "-"))
            for member in members or ():
                out[member] = data
        for name, crc in crcs.items():
            if name.startswith("word/media/") and crc in self.media:
                out[name] = self.media[crc]
            elif name.startswith("word/embeddings/") and crc in self.embedded:
                out[name] = self.embedded[crc]
        for name, data in self.zipnames.items():
            if name in loaded.by_name or name == loaded.doc_name:
                raise TemplateProblemError(
                    _("%(name)s holds the template's text, which replace_zipname cannot "
                      "replace", name=name), code="template_structure",
                    where=Where(file=template_name), hint=_("change the text with tags instead"))
            if name in crcs:   # as docxtpl: a name the template does not have is ignored
                out[name] = data
        resolved = tuple(sorted(out.items()))
        self._cache = (loaded, resolved)
        return resolved
