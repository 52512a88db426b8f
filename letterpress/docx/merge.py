"""Many letters of one template in one .docx, each starting on a new page.

:class:`MergedDocument` streams: the letters' body text goes through one zlib
stream, in large blocks, into a temporary file, and every other member is
written to a second temporary file as it comes, so memory stays flat however
many letters there are. The zip is put together, and moved to its final name,
when the document is closed.
"""
from __future__ import annotations

import collections
import contextlib
import hashlib
import posixpath
import re
import shutil
import tempfile
import zlib
from typing import IO, Dict, List, Optional, Tuple

from letterpress.docx.sections import (
    DEFAULT_BREAK,
    RID,
    end_section,
    last_paragraph,
    last_sectpr,
    remap_rids,
    renumber_docpr,
    section_break,
)
from letterpress.docx.zipwriter import (
    CENTRAL_SIZE,
    Member,
    central_header,
    compress,
    end_records,
    local_header,
    quoteattr,
    rel_xml,
    rels_document,
    rels_name,
)
from letterpress.files import PathLike, atomic_path

_BLOCK = 1 << 17    # text gathered before it goes through zlib: fewer, larger calls


class _Spool:
    """A zip member's data deflated into a temporary file as it is written."""

    def __init__(self, level: int, where) -> None:
        self.file = tempfile.TemporaryFile(dir=where)
        self._z, self.crc, self.size = zlib.compressobj(level, zlib.DEFLATED, -15), 0, 0
        self._buffer: List[bytes] = []
        self._buffered = 0

    def write(self, data: bytes) -> None:
        self._buffer.append(data)
        self._buffered += len(data)
        if self._buffered >= _BLOCK:
            self._drain()

    def _drain(self) -> None:
        if self._buffer:
            data = b"".join(self._buffer)
            self._buffer, self._buffered = [], 0
            self.crc, self.size = zlib.crc32(data, self.crc), self.size + len(data)
            self.file.write(self._z.compress(data))

    def finish(self, name: str, stamp: Tuple[int, int]) -> Member:
        self._drain()
        self.file.write(self._z.flush())
        csize = self.file.tell()
        self.file.seek(0)
        return Member(name, 8, 0 if name.isascii() else 0x800, *stamp, self.crc, csize, self.size)


def _split_section(loaded, inner: str) -> Tuple[str, str]:
    """(content, its section properties as a "next page" section break)."""
    final = loaded.final_sect
    if final and inner.endswith(final):
        return inner[:-len(final)], loaded.break_sect
    at = last_sectpr(inner)
    if at < 0:
        return inner, DEFAULT_BREAK
    return inner[:at], section_break(inner[at:], loaded.body_open)


def _opening(xml: str, root: str) -> Tuple[str, str]:
    """(the XML up to and including the start tag of ``root``, what is inside it)."""
    found = re.search(rf"<{root}\b[^>]*?(/?)>", xml)
    if found is None:
        raise ValueError(f"no <{root}> element")
    if found.group(1):
        return xml[:found.start()] + xml[found.start():found.end() - 2] + ">", ""
    return xml[:found.end()], xml[found.end():xml.rindex(f"</{root}>")]


def _retarget(rels: Optional[str], rid: str, target: str) -> Optional[str]:
    """A relationships document with the target of ``rid`` changed."""
    if rels is None:
        return None
    return re.sub(rf'(<Relationship\b[^>]*\bId="{re.escape(rid)}"[^>]*?\bTarget=")[^"]*(")|'
                  rf'(<Relationship\b[^>]*?\bTarget=")[^"]*("[^>]*\bId="{re.escape(rid)}")',
                  lambda m: (m.group(1) + target + m.group(2)) if m.group(1)
                  else (m.group(3) + target + m.group(4)), rels)


class MergedDocument:
    """One .docx holding many letters of one template, each starting on a new page.

    Like Word's "merge to new document": every letter is its own section (its section
    properties moved into a section break of type "next page" in its last paragraph),
    so it keeps its headers and footers. Headers and footers with fields get a copy
    per letter, shared with the next letter when it reads the same; static ones are
    shared. Relationships of pictures and hyperlinks and drawing ids are renumbered
    so they stay unique. Letters are streamed to temporary files beside ``path`` in
    the order added; ``path`` appears only when :meth:`close` succeeds (an exception
    in the ``with`` block leaves nothing)::

        with MergedDocument(template, "letters.docx") as merged:
            for context in contexts:
                merged.add(template.render(context))
    """

    def __new__(cls, template, path: PathLike):
        if not template.fast:   # letters docxtpl rendered: put together by docxcompose
            from letterpress.docx.fallback import ComposedDocument

            return ComposedDocument(template, path)
        return super().__new__(cls)

    def __init__(self, template, path: PathLike) -> None:
        self._tpl, self._stack, self._done = template, contextlib.ExitStack(), False
        self._files: List[IO[bytes]] = []
        self._tmp = self._stack.enter_context(atomic_path(path))
        try:
            where, level = self._tmp.parent, template.compresslevel
            self._data, self._records = (self._keep(tempfile.TemporaryFile(dir=where))
                                         for _ in "ab")
            self._body, self._rels, self._types = (_Spool(level, where) for _ in "abc")
            self._files += [s.file for s in (self._body, self._rels, self._types)]
        except BaseException:
            self.abort()
            raise
        self._count = self._members = self._offset = 0
        self._pending: Optional[tuple] = None
        self._shared: Dict[tuple, str] = {}    # (type, target, external) -> rId
        self._media: set = set()
        self._last: Dict[str, Optional[tuple]] = {}   # header part -> (pieces, rId, own media)
        self._loaded = template.loaded
        loaded = template.loaded
        self._docpr = loaded.docpr_start
        self._break_split = RID.split(loaded.break_sect)   # [text, r:id=", rId, ", text...]
        self._doc_dir = doc_dir = loaded.doc_name.rpartition("/")[0] + "/"
        self._copies = []   # (part, rId, stem, relationship and override around the number)
        self._replaced: Dict[str, str] = {}   # a letter's own media: its digest -> member
        for k, (name, rid, reltype, ctype) in enumerate(loaded.header_parts, 1):
            stem = name.rsplit(".", 1)[0]
            target = stem[len(doc_dir):] if stem.startswith(doc_dir) else "/" + stem
            rel = ('<Relationship Id="rIdLpH', f'_{k}" Type={quoteattr(reltype)} '
                   f'Target={quoteattr(target)[:-1]}-', '.xml"/>')
            override = (f'<Override PartName="/{stem}-', f'.xml" ContentType="{ctype}"/>')
            self._copies.append((name, rid, stem, rel, override))
        self._body.write(loaded.doc_prefix)
        # the template's own relationships, types and members are written when the document
        # is closed: a sub-document may still add to them (see CompiledTemplate.get_docx)
        rels = loaded.part_rels[loaded.doc_name] or \
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"/>'
        self._rels.write(_opening(rels, "Relationships")[0].encode("utf-8"))
        self._types.write(_opening(loaded.types_xml, "Types")[0].encode("utf-8"))

    def _keep(self, f: IO[bytes]) -> IO[bytes]:
        self._files.append(f)
        return f

    def __enter__(self) -> "MergedDocument":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close() if exc_type is None else self.abort()

    def __len__(self) -> int:
        return self._count

    def _write(self, member: Member, raw: bytes) -> None:
        self._records.write(central_header(member, self._offset))
        header = local_header(member)
        self._data.write(header + raw)
        self._offset += len(header) + len(raw)
        self._members += 1

    def _part(self, name: str, source: str, pieces: tuple, existing: Optional[str] = None,
              added=()) -> None:
        """A rendered part under ``name``: ``source`` (a part's name) says how to write it."""
        tpl, loaded = self._tpl, self._loaded
        part = loaded.by_name.get(source)
        text = None
        if part is None:
            text = pieces[0]
        elif part.has_docpr or any(p.__class__ is str and "docPr" in p for p in pieces):
            text = part.text(pieces)
        if text is not None:
            if "docPr" in text:
                text, self._docpr = renumber_docpr(text, self._docpr)
            head = part.head[0] if part is not None and part.head else b""
            self._write(*compress(name, head + text.encode("utf-8", "replace"),
                                  tpl.compresslevel, loaded.stamp))
        else:   # the same bytes as the letter's own file: made once when both are written
            member, raw = tpl.part_member(source, pieces, loaded)
            self._write(member if name == source else Member(name, *member[1:]), raw)
        if existing is not None or added:
            self._write(*compress(rels_name(name), rels_document(existing, added),
                                  tpl.compresslevel, loaded.stamp))

    def _same(self, name: str, before: tuple, pieces: tuple) -> bool:
        """Whether a part's pieces read the same as the letter before's: ready pieces are
        compared as they are (should two differ yet read the same, the copy is merely not
        shared); whole text (the first letter's, or one docxtpl's post-processing made)
        is compared as text."""
        if before is pieces or before == pieces:
            return True
        if (len(before) == 1 and before[0].__class__ is str) or \
                (len(pieces) == 1 and pieces[0].__class__ is str):
            part = self._loaded.by_name[name]
            return part.text(before) == part.text(pieces)
        return False

    def add(self, letter) -> None:
        """Append one :class:`~letterpress.docx.template.RenderedLetter` of this template."""
        tpl, n = self._tpl, self._count
        if self._done:
            raise ValueError("this merged document is already closed")
        if letter.key != tpl.key:
            raise ValueError("the letter was rendered from a different template")
        loaded = self._loaded = letter.loaded or tpl.loaded
        level, stamp = tpl.compresslevel, loaded.stamp
        for name, data in letter.media:
            if name not in self._media:
                self._media.add(name)
                self._write(*compress(name, data, level, stamp))
        links: Dict[str, str] = {}     # the letter's rIds in the body -> ours
        heads: Dict[str, str] = {}     # the template's header/footer rIds -> this letter's copies
        added: Dict[str, list] = collections.defaultdict(list) if letter.rels else {}
        rels = list(letter.rels)
        retarget = self._own_media(letter, loaded, rels)
        for src, rid, reltype, target, external in rels:
            if src != loaded.doc_name:
                added[src].append((rid, reltype, target, external))
            elif (reltype, target, external) not in self._shared:
                new = self._shared[(reltype, target, external)] = f"rIdLpM{len(self._shared) + 1}"
                links[rid] = new
                self._rels.write(rel_xml(links[rid], reltype, target, external).encode("utf-8"))
            else:
                links[rid] = self._shared[(reltype, target, external)]
        parts = dict(letter.parts)
        for k, (name, rid, stem, rel, override) in enumerate(self._copies, 1):
            pieces, last = parts.pop(name), self._last.get(name)
            own = tuple(sorted(retarget.get(name, {}).items()))
            if last is not None and name not in added and last[2] == own \
                    and self._same(name, last[0], pieces):
                if last[1] != rid:   # the same as the letter before: share its copy
                    heads[rid] = last[1]
                self._last[name] = (pieces, last[1], own)
                continue
            copy = name
            if n:   # the first letter uses the template's own header parts, the others copies
                number = str(n + 1)
                copy, heads[rid] = f"{stem}-{number}.xml", f"rIdLpH{number}_{k}"
                self._rels.write(number.join(rel).encode("utf-8"))
                self._types.write(number.join(override).encode("utf-8"))
            existing = loaded.part_rels.get(name)
            for old, target in own:
                existing = _retarget(existing, old, target)
            self._part(copy, name, pieces, existing, added.get(name, ()))
            self._last[name] = None if name in added else (pieces, heads.get(rid, rid), own)
        for name, pieces in parts.items() if not n else ():   # footnotes, properties: letter 1's
            self._part(name, name, pieces, loaded.part_rels.get(name), added.get(name, ()))
        content, sect = _split_section(loaded, loaded.body.text(letter.pieces)[8:-9])
        mapping = {**links, **heads}
        if mapping:
            if sect is loaded.break_sect:   # the usual case: the template's ids, found once
                split = self._break_split
                sect = "".join([mapping.get(x, x) if i % 4 == 2 else x
                                for i, x in enumerate(split)])
            else:
                sect = remap_rids(sect, mapping)
            if any(rid in content for rid in mapping):
                content = remap_rids(content, mapping)
        if "docPr" in content:
            content, self._docpr = renumber_docpr(content, self._docpr)
        at = last_paragraph(content)
        at = len(content) if at is None else at
        self._flush(section_break=True)
        self._pending, self._count = (content, at, sect), n + 1

    def _own_media(self, letter, loaded, rels: list) -> Dict[str, Dict[str, str]]:
        """The letter's replaced members (docxtpl's ``replace_pic``...) as members of their
        own: the body refers to them through new relationships (added to ``rels``), headers
        and footers through their copy's; returns {header part: {rId: new target}}."""
        retarget: Dict[str, Dict[str, str]] = {}
        for member, data in letter.replaced:
            digest = hashlib.sha1(data).hexdigest()[:20]
            own = self._replaced.get(digest + member)
            if own is None:
                stem, dot, ext = posixpath.basename(member).rpartition(".")
                own = f"{posixpath.dirname(member)}/lp-{digest}-{stem or ext}{dot}{ext}"
                self._replaced[digest + member] = own
                self._write(*compress(own, data, self._tpl.compresslevel, loaded.stamp))
            for part, rid, reltype in loaded.media_refs.get(member, ()):
                target = posixpath.relpath(own, posixpath.dirname(part))
                if part == loaded.doc_name:
                    rels.append((part, rid, reltype, target, False))
                elif part in loaded.by_name and loaded.by_name[part].renderable:
                    retarget.setdefault(part, {})[rid] = target
        return retarget

    def _flush(self, section_break: bool) -> None:
        """Write the letter held back until it was known whether another follows."""
        if self._pending is not None:
            content, at, sect = self._pending
            last = content[at:]
            tail = end_section(last, sect) if section_break else last + sect
            self._body.write((content[:at] + tail).encode("utf-8", "replace"))
            self._pending = None

    def close(self) -> None:
        """Finish the zip and move it to its final name."""
        if self._done:
            return
        if not self._count:
            self.abort()
            raise ValueError("no letters were added to the merged document")
        try:
            self._finish()
        except BaseException:
            self.abort()
            raise
        self._done = True
        self._stack.close()

    def _finish(self) -> None:
        tpl = self._tpl
        loaded = tpl.loaded    # as it is now: with what sub-documents added to the template
        stamp = loaded.stamp
        for member, raw in loaded.static:
            if member.name != "[Content_Types].xml":
                self._write(member, raw)
        self._flush(section_break=False)
        self._body.write(loaded.doc_suffix)
        rels = loaded.part_rels[loaded.doc_name]
        self._rels.write((_opening(rels, "Relationships")[1] if rels else "").encode("utf-8")
                         + b"</Relationships>")
        self._types.write(_opening(loaded.types_xml, "Types")[1].encode("utf-8") + b"</Types>")
        with open(self._tmp, "wb") as out:
            cds = []

            def copy(member: Member, source: IO[bytes]) -> None:
                cds.append(central_header(member, out.tell()))
                out.write(local_header(member))
                shutil.copyfileobj(source, out, 1 << 18)

            copy(self._types.finish("[Content_Types].xml", stamp), self._types.file)
            shift = out.tell()   # [Content_Types].xml goes first, before the spooled members
            self._data.seek(0)
            shutil.copyfileobj(self._data, out, 1 << 18)
            copy(self._body.finish(loaded.doc_name, stamp), self._body.file)
            copy(self._rels.finish(rels_name(loaded.doc_name), stamp), self._rels.file)
            cd_start = out.tell()
            out.write(cds[0])
            self._records.seek(0)
            for _ in range(self._members):
                head = bytearray(self._records.read(CENTRAL_SIZE))
                offset = int.from_bytes(head[42:46], "little") + shift
                if offset > 0xFFFFFFFE:
                    raise ValueError("the merged document would be larger than 4 GiB")
                head[42:46] = offset.to_bytes(4, "little")
                out.write(head + self._records.read(int.from_bytes(head[28:30], "little")))
            out.write(b"".join(cds[1:]))
            out.write(end_records(self._members + 3, cd_start, out.tell() - cd_start))
        for f in self._files:
            f.close()

    def abort(self) -> None:
        """Give up: remove the temporary files; nothing appears under the final name."""
        if self._done:
            return
        self._done = True
        for f in self._files:
            with contextlib.suppress(Exception):
                f.close()
        self._stack.__exit__(RuntimeError, RuntimeError("merged document aborted"), None)
