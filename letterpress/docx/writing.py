"""Writing a rendered letter as a .docx: the template's unchanged members as already
compressed bytes, the rendered parts compressed once (and not again when a part is the
same as the last letter's), relationships and media the letter added.

:class:`LetterZipping` is a part of :class:`letterpress.docx.template.CompiledTemplate`;
:class:`letterpress.docx.merge.MergedDocument` uses :meth:`LetterZipping.part_member` too.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

from letterpress.docx import zipwriter as dz
from letterpress.docx.load import Loaded, lay_out

if TYPE_CHECKING:  # pragma: no cover
    from letterpress.docx.letter import RenderedLetter


class LetterZipping:
    """The zip members of letters (mixed into :class:`CompiledTemplate`)."""

    if TYPE_CHECKING:  # pragma: no cover - set by CompiledTemplate
        compresslevel: int
        _written: Dict[str, tuple]
        _laid: Dict[tuple, tuple]

        @property
        def fast_loaded(self) -> Loaded: ...

    def part_member(self, name: str, pieces: tuple,
                    loaded: Optional[Loaded] = None) -> Tuple[dz.Member, bytes]:
        """The zip member of a rendered part; the last letter's when the pieces are equal
        (a part whose fields did not change is not joined or compressed again)."""
        loaded = loaded or self.fast_loaded
        last = self._written.get(name)
        if last is not None and (last[0] is pieces or last[0] == pieces):
            return last[1]
        part = loaded.by_name.get(name)
        stamp = loaded.stamp
        if part is None:   # document properties: their text, compressed
            member = dz.compress(name, pieces[0].encode("utf-8", "replace"), self.compresslevel,
                                 stamp)
        else:
            member = part.member(pieces, self.compresslevel, stamp)
        self._written[name] = (pieces, member)
        return member

    def _head(self, loaded: Loaded, replaced: tuple) -> Tuple[bytes, bytes, int]:
        """The unchanged members laid out, with ``replaced`` members swapped in."""
        if not replaced:
            return loaded.head, loaded.head_cd, len(loaded.static)
        key = (id(loaded), replaced)
        laid = self._laid.get(key)
        if laid is None:
            new = dict(replaced)
            static = [dz.compress(m.name, new[m.name], 6, loaded.stamp) if m.name in new
                      else (m, raw) for m, raw in loaded.static]
            laid = (*lay_out(static), len(static))
            self._laid.clear()   # one set of replacements at a time is the usual case
            self._laid[key] = laid
        return laid

    def _zip(self, letter: "RenderedLetter") -> List[bytes]:
        if letter.whole is not None:
            return [letter.whole]
        loaded = letter.loaded or self.fast_loaded
        level, stamp = self.compresslevel, loaded.stamp
        head, head_cd, count = self._head(loaded, letter.replaced)
        body = loaded.body
        members = [body.member(letter.pieces, level, stamp) if body.dynamic
                   else self.part_member(body.name, letter.pieces, loaded)]   # no tags
        members += [self.part_member(name, pieces, loaded) for name, pieces in letter.parts]
        if not letter.rels:     # the parts' relationships as in the template
            members += [original for original in loaded.optional.values() if original]
            return dz.zip_pieces(head, head_cd, count, members)
        added: Dict[str, list] = {}
        for src, rid, reltype, target, external in letter.rels:
            added.setdefault(src, []).append((rid, reltype, target, external))
        for part, original in loaded.optional.items():
            if part in added:
                rels = dz.rels_document(loaded.part_rels[part], added[part])
                members.append(dz.compress(dz.rels_name(part), rels, level, stamp))
            elif original:
                members.append(original)
        members += [dz.compress(name, data, level, stamp) for name, data in letter.media]
        return dz.zip_pieces(head, head_cd, count, members)
