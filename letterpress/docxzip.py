"""The package side of a .docx: reading a template's zip, writing ours, merging letters.

A .docx is a zip of XML parts, and a letter differs from its template in a few of
them (the body, headers and footers with fields, sometimes images). The other
members are copied as the template's already-compressed bytes, and most of the
body as pieces deflated once per template (:func:`join_deflated`), so writing a
letter compresses little. :class:`MergedDocument` puts many letters in one .docx,
each its own section starting on a new page, streaming through zlib into
temporary files so memory stays flat however many letters there are.
"""
from __future__ import annotations

import collections
import contextlib
import io
import posixpath
import re
import shutil
import struct
import tempfile
import zipfile
import zlib
from typing import IO, Dict, Iterable, List, Optional, Tuple
from xml.sax.saxutils import quoteattr

from lxml import etree

from .files import PathLike, atomic_path

_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_STORED_EXTS = ("png", "jpg", "jpeg", "gif")  # already compressed: deflating again wastes time
W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
RT_IMAGE, RT_HYPERLINK, RT_HEADER, RT_FOOTER, RT_OFFICE = (
    _R + t for t in ("image", "hyperlink", "header", "footer", "officeDocument"))
RT_CORE = "http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties"
_WML = "application/vnd.openxmlformats-officedocument.wordprocessingml."
CT_MAIN, CT_FOOTNOTES = _WML + "document.main+xml", _WML + "footnotes+xml"
_CT_NS = "{http://schemas.openxmlformats.org/package/2006/content-types}"
_RELS_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
XML_DECL = b"<?xml version='1.0' encoding='UTF-8' standalone='yes'?>\n"
DEFAULT_BREAK = '<w:sectPr><w:type w:val="nextPage"/></w:sectPr>'
_PARSER = etree.XMLParser(remove_blank_text=True, resolve_entities=False)  # as python-docx
_SAVE_AS = "open it in Word or WPS and save it as a Word document (.docx), then use that file"

#: One zip member as its headers describe it (``csize``/``usize``: compressed/plain size).
Member = collections.namedtuple(
    "Member", "name method flags dostime dosdate crc csize usize made_by eattr", defaults=(20, 0))


class NotDocx(Exception):
    """The file is not a .docx we can use; ``hint`` says what to do."""

    def __init__(self, message: str, hint: str = _SAVE_AS) -> None:
        super().__init__(message)
        self.hint = hint


def compress(name: str, data: bytes, level: int, stamp: Tuple[int, int]) -> Tuple[Member, bytes]:
    """A new member for ``data``: deflated, or stored for images that do not shrink."""
    stored, raw = name.rsplit(".", 1)[-1].lower() in _STORED_EXTS, data
    if not stored:   # a window to suit the data: zlib's full set-up costs more than a small part
        bits = min(15, max(10, len(data).bit_length() + 1))
        z = zlib.compressobj(level, zlib.DEFLATED, -bits, bits - 7)
        raw = z.compress(data) + z.flush()
    return Member(name, 0 if stored else 8, 0 if name.isascii() else 0x800, *stamp,
                  zlib.crc32(data), len(raw), len(data)), raw


def precompress(data: bytes, level: int) -> bytes:
    """``data`` deflated on its own, byte-aligned and not final: a piece to join."""
    z = zlib.compressobj(level, zlib.DEFLATED, -15)
    return z.compress(data) + z.flush(zlib.Z_SYNC_FLUSH)


def stored_blocks(plain: bytes) -> bytes:
    """``plain`` as deflate "stored" (copied, not compressed) blocks, not final."""
    return b"".join(struct.pack("<BHH", 0, len(b), len(b) ^ 0xFFFF) + b
                    for b in (plain[i:i + 65535] for i in range(0, len(plain), 65535)))


def join_deflated(name: str, items: Iterable[Tuple[bytes, Optional[bytes]]],
                  stamp: Tuple[int, int]) -> Tuple[Member, bytes]:
    """A member from (plain, packed) pieces, ``packed`` being :func:`precompress` of
    ``plain`` or None to store it: no compression happens here."""
    out, crc, size = [], 0, 0
    for plain, packed in items:
        crc, size = zlib.crc32(plain, crc), size + len(plain)
        out.append(stored_blocks(plain) if packed is None else packed)
    out.append(b"\x03\x00")     # the final, empty block
    raw = b"".join(out)
    return Member(name, 8, 0 if name.isascii() else 0x800, *stamp, crc, len(raw), size), raw


def local_header(m: Member) -> bytes:
    if m.csize > 0xFFFFFFFE or m.usize > 0xFFFFFFFE:
        raise ValueError(f"{m.name} would be larger than 4 GiB")
    name = m.name.encode("utf-8")
    return _LOCAL.pack(0x04034B50, 20, m.flags, m.method, m.dostime, m.dosdate, m.crc,
                       m.csize, m.usize, len(name), 0) + name


def central_header(m: Member, offset: int) -> bytes:
    if offset > 0xFFFFFFFE:
        raise ValueError("the document would be larger than 4 GiB")
    name = m.name.encode("utf-8")
    return _CENTRAL.pack(0x02014B50, m.made_by, 20, m.flags, m.method, m.dostime, m.dosdate,
                         m.crc, m.csize, m.usize, len(name), 0, 0, 0, 0, m.eattr, offset) + name


def end_records(count: int, cd_offset: int, cd_size: int) -> bytes:
    """The end of the central directory; zip64 records when there are 65535 members or more."""
    out = b""
    if count >= 0xFFFF:
        out = (struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, count, count, cd_size,
                           cd_offset) + struct.pack("<IIQI", 0x07064B50, 0, cd_offset + cd_size, 1))
    n = min(count, 0xFFFF)
    return out + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, cd_size, cd_offset, 0)


def zip_pieces(head: bytes, head_cd: bytes, head_count: int,
               members: Iterable[Tuple[Member, bytes]]) -> List[bytes]:
    """A zip as pieces to join or write in order: a prepared block of members (with its
    central directory) first, then ``members``."""
    pieces, cds, offset, count = [head], [head_cd], len(head), head_count
    for member, raw in members:
        header = local_header(member)
        pieces += (header, raw)
        cds.append(central_header(member, offset))
        offset, count = offset + len(header) + len(raw), count + 1
    cd = b"".join(cds)
    return pieces + [cd, end_records(count, offset, len(cd))]


def rels_name(part: str) -> str:
    head, tail = posixpath.split(part)
    return posixpath.join(head, "_rels", tail + ".rels")


def rel_xml(rid: str, reltype: str, target: str, external: bool) -> str:
    mode = ' TargetMode="External"' if external else ""
    return (f"<Relationship Id={quoteattr(rid)} Type={quoteattr(reltype)} "
            f"Target={quoteattr(target)}{mode}/>")


def rels_document(existing: Optional[str], rels: Iterable[tuple]) -> bytes:
    """A .rels part: ``existing`` (the template's, or None) plus ``rels`` (for :func:`rel_xml`)."""
    existing = existing or f'<Relationships xmlns="{_RELS_NS}"></Relationships>'
    at = existing.rindex("</Relationships>")
    return (existing[:at] + "".join(rel_xml(*r) for r in rels) + existing[at:]).encode("utf-8")


class Package:
    """A template .docx as the renderer needs it: raw members, content types, relationships.
    Raises :class:`NotDocx` for anything that is not a usable Word document."""

    def __init__(self, data: bytes) -> None:
        if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
            raise NotDocx("this is an old-style Word .doc file (or a password-protected "
                          "document), not a .docx", "open it in Word or WPS, remove any "
                          "password and save it as a Word document (.docx)")
        try:
            self._zip = zipfile.ZipFile(io.BytesIO(data))
            if self._zip.testzip() is not None:
                raise zipfile.BadZipFile("a member is damaged")
            self.members = [self._raw_member(data, info) for info in self._zip.infolist()
                            if not info.is_dir()]
            self._names = {m.name for m, _ in self.members}
            self.types_xml = self.text("[Content_Types].xml")
            if self.types_xml is None:
                raise NotDocx("it has no [Content_Types].xml, so it is not a Word document")
            types = etree.fromstring(self.types_xml.encode("utf-8"))
            self.overrides = {e.get("PartName", "").lstrip("/"): e.get("ContentType")
                              for e in types.iter(_CT_NS + "Override")}
            self.defaults = {e.get("Extension", "").lower(): e.get("ContentType")
                             for e in types.iter(_CT_NS + "Default")}
            rels = self.rels("")
            self.doc = next((t for _, rt, t, x in rels if rt == RT_OFFICE and not x),
                            "word/document.xml")
            self.core = next((t for _, rt, t, x in rels if rt == RT_CORE and t in self._names),
                             None)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, etree.XMLSyntaxError, EOFError,
                OSError, ValueError, zlib.error, struct.error) as exc:
            raise NotDocx(f"this is not a Word .docx file ({exc})") from None
        if self.doc not in self._names:
            raise NotDocx(f"it has no {self.doc}, so it is not a Word document")
        ctype = self.overrides.get(self.doc) or self.defaults.get(self.doc.rsplit(".", 1)[-1])
        if ctype != CT_MAIN:
            raise NotDocx(f"its main part is {ctype!r}, not a plain Word document "
                          "(a macro-enabled .docm, or a .dotx template?)")
        self.stamp = next(m for m, _ in self.members if m.name == self.doc)[3:5]

    def _raw_member(self, data: bytes, info: zipfile.ZipInfo) -> Tuple[Member, bytes]:
        y, mo, d, h, mi, s = info.date_time
        stamp = ((h << 11) | (mi << 5) | (s // 2), (max(y, 1980) - 1980) << 9 | (mo << 5) | d)
        if info.flag_bits & 1 or info.compress_type not in (0, 8):   # recompress the odd ones
            member, raw = compress(info.filename, self._zip.read(info), 6, stamp)
        else:
            *_, nlen, elen = _LOCAL.unpack_from(data, info.header_offset)
            start = info.header_offset + _LOCAL.size + nlen + elen
            raw = data[start:start + info.compress_size]
            member = Member(info.filename, info.compress_type, info.flag_bits & 0x0806, *stamp,
                            info.CRC, len(raw), info.file_size)
        return member._replace(made_by=info.create_version | info.create_system << 8,
                               eattr=info.external_attr), raw

    def blob(self, name: str) -> Optional[bytes]:
        return self._zip.read(name) if name in self._names else None

    def text(self, name: str) -> Optional[str]:
        return self._zip.read(name).decode("utf-8") if name in self._names else None

    def rels(self, part: str) -> List[Tuple[str, str, str, bool]]:
        """(rId, type, target part name or URL, external) of ``part``'s relationships, in order."""
        xml, out = self.text(rels_name(part)), []
        for e in etree.fromstring(xml.encode("utf-8")) if xml else ():
            external, target = e.get("TargetMode") == "External", e.get("Target", "")
            if not external:
                target = target[1:] if target.startswith("/") else posixpath.normpath(
                    posixpath.join(posixpath.dirname(part), target))
            out.append((e.get("Id"), e.get("Type"), target, external))
        return out


def split_body(raw: bytes) -> Tuple[str, str, bytes, bytes]:
    """document.xml's body as docxtpl sees it (``<w:body>...</w:body>``), the body's start
    tag with every namespace declaration, and the document's bytes before and after it."""
    try:
        body = etree.fromstring(raw, _PARSER).find(f"{{{W_NS}}}body")
    except etree.XMLSyntaxError as exc:
        raise NotDocx(f"its document.xml is damaged ({exc})") from None
    found = re.search(rb"<w:body[\s>/]", raw)
    if body is None or found is None:
        raise NotDocx("its document.xml has no body that this program can read")
    src = etree.tostring(body, encoding="unicode")
    end = src.index(">") + 1
    if src[end - 2] == "/":
        return "<w:body></w:body>", src[:end - 2] + ">", raw[:found.start()], raw[end:]
    return "<w:body>" + src[end:], src[:end], raw[:found.start()], raw[raw.rfind(b"</w:body>") + 9:]


def reserialize(blob: bytes) -> str:
    """A part's XML as docxtpl sees it: parsed as python-docx does and written back."""
    return etree.tostring(etree.fromstring(blob, _PARSER), encoding="unicode")


_SECT = re.compile(r"<w:sectPr(?=[ >/])[^>]*?(/?)>|</w:sectPr>")
_DOCPR = re.compile(r'(<wp:docPr\b[^>]*?\sid=")[^"]*(")')
_RID = re.compile(r'(r:\w+=")([^"]+)(")')


def last_sectpr(xml: str) -> int:
    """Where the section properties ending ``xml`` (a body's content) start, or -1."""
    depth = 0
    for m in reversed(list(_SECT.finditer(xml)) if xml.endswith("</w:sectPr>") else []):
        depth += 1 if m.group(0) == "</w:sectPr>" else (0 if m.group(1) else -1)
        if depth == 0:
            return m.start()
    return -1


def section_break(sectpr: str, body_open: str) -> str:
    """``sectpr`` as a section starting on a new page (``<w:type w:val="nextPage"/>``)."""
    w = f"{{{W_NS}}}"
    sect = etree.fromstring(body_open + sectpr + "</w:body>")[0]
    for old in sect.findall(w + "type"):
        sect.remove(old)
    first = ("headerReference", "footerReference", "footnotePr", "endnotePr")
    at = max((i + 1 for i, c in enumerate(sect) if str(c.tag)[len(w):] in first), default=0)
    sect.insert(at, etree.Element(w + "type", {w + "val": "nextPage"}))
    head, rest = etree.tostring(sect, encoding="unicode").split(">", 1)
    return re.sub(r'\sxmlns:\w+="[^"]*"', "", head) + ">" + rest


def renumber_docpr(xml: str, start: int) -> Tuple[str, int]:
    """Every ``wp:docPr`` in ``xml`` numbered from ``start`` on; returns the next free id."""
    count = iter(range(start, 1 << 31))
    xml = _DOCPR.sub(lambda m: f"{m.group(1)}{next(count)}{m.group(2)}", xml)
    return xml, next(count)


def last_paragraph(content: str) -> Optional[int]:
    """Where the last top-level paragraph of ``content`` starts: ``len(content)`` when the
    content does not end with a paragraph, None when its start is not in ``content``."""
    end = len(content.rstrip())
    if not content.endswith("</w:p>", 0, end):
        return len(content)
    depth, i = 1, end - 6
    while depth:
        close = content.rfind("</w:p>", 0, i)
        start = max(content.rfind("<w:p>", 0, i), content.rfind("<w:p ", 0, i))
        if start < 0:
            return None
        depth, i = (depth - 1, start) if start > close else (depth + 1, close)
    return i


def end_section(paragraph: str, sectpr: str) -> str:
    """A letter's last paragraph holding ``sectpr`` (as Word ends a section), or a new
    empty paragraph holding it when ``paragraph`` is not one."""
    if paragraph.startswith(("<w:p>", "<w:p ")):
        tag_end = paragraph.index(">") + 1
        if paragraph.startswith("<w:pPr/>", tag_end):
            return f"{paragraph[:tag_end]}<w:pPr>{sectpr}</w:pPr>{paragraph[tag_end + 8:]}"
        if not paragraph.startswith(("<w:pPr>", "<w:pPr "), tag_end):
            return f"{paragraph[:tag_end]}<w:pPr>{sectpr}</w:pPr>{paragraph[tag_end:]}"
        close = paragraph.find("</w:pPr>", tag_end)
        change = paragraph.find("<w:pPrChange", tag_end, close)
        if "<w:sectPr" not in paragraph[tag_end:close]:
            at = change if change >= 0 else close
            return paragraph[:at] + sectpr + paragraph[at:]
    return f"{paragraph}<w:p><w:pPr>{sectpr}</w:pPr></w:p>"


class _Spool:
    """A zip member's data deflated into a temporary file as it is written."""

    def __init__(self, level: int, where) -> None:
        self.file = tempfile.TemporaryFile(dir=where)
        self._z, self.crc, self.size, self._dirty = zlib.compressobj(level, 8, -15), 0, 0, False

    def write(self, data: bytes, packed: Optional[bytes] = None, store: bool = False) -> None:
        """Compress ``data``; or copy it as stored blocks (``store``) or as ``packed``
        (:func:`precompress` of it), after a full flush so that nothing refers across."""
        self.crc, self.size = zlib.crc32(data, self.crc), self.size + len(data)
        if packed is None and not store:
            self.file.write(self._z.compress(data))
            self._dirty = True
            return
        if self._dirty:
            self.file.write(self._z.flush(zlib.Z_FULL_FLUSH))
            self._dirty = False
        self.file.write(stored_blocks(data) if packed is None else packed)

    def finish(self, name: str, stamp: Tuple[int, int]) -> Member:
        self.file.write(self._z.flush())
        csize = self.file.tell()
        self.file.seek(0)
        return Member(name, 8, 0 if name.isascii() else 0x800, *stamp, self.crc, csize, self.size)


class MergedDocument:
    """One .docx holding many letters of one template, each starting on a new page.

    Like Word's "merge to new document": every letter is its own section (its section
    properties moved into a section break of type "next page" in its last paragraph),
    so it keeps its headers and footers. Headers and footers with fields get a copy
    per letter; static ones are shared. Relationships of pictures and hyperlinks and
    drawing ids are renumbered so they stay unique. Letters are streamed to temporary
    files beside ``path`` in the order added; ``path`` appears only when :meth:`close`
    succeeds (an exception in the ``with`` block leaves nothing)::

        with MergedDocument(template, "letters.docx") as merged:
            for context in contexts:
                merged.add(template.render(context))
    """

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
        self._count = self._members = 0
        self._pending: Optional[tuple] = None
        self._shared: Dict[tuple, str] = {}    # (type, target, external) -> rId
        self._media: set = set()
        self._docpr = template._docpr_start
        self._body.write(template._doc_prefix)
        self._rels.write(template._part_rels[template._doc_name].rsplit("</Relationships>", 1)[0]
                         .encode("utf-8"))
        self._types.write(template._types_xml.rsplit("</Types>", 1)[0].encode("utf-8"))
        for member, raw in template._static:
            if member.name != "[Content_Types].xml":
                self._write(member, raw)

    def _keep(self, f: IO[bytes]) -> IO[bytes]:
        self._files.append(f)
        return f

    def __enter__(self) -> "MergedDocument":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self.close() if exc_type is None else self.abort()
        return False

    def __len__(self) -> int:
        return self._count

    def _write(self, member: Member, raw: bytes) -> None:
        self._records.write(central_header(member, self._data.tell()))
        self._data.write(local_header(member) + raw)
        self._members += 1

    def _part(self, name: str, data: bytes, existing: Optional[str] = None, added=()) -> None:
        if b"docPr" in data:
            text, self._docpr = renumber_docpr(data.decode("utf-8"), self._docpr)
            data = text.encode("utf-8")
        tpl = self._tpl
        self._write(*compress(name, data, tpl.compresslevel, tpl._stamp))
        if existing is not None or added:
            self._write(*compress(rels_name(name), rels_document(existing, added),
                                  tpl.compresslevel, tpl._stamp))

    def add(self, letter) -> None:
        """Append one :class:`~letterpress.render.RenderedLetter` of this template."""
        tpl, n = self._tpl, self._count
        if self._done:
            raise ValueError("this merged document is already closed")
        if letter.key != tpl.key:
            raise ValueError("the letter was rendered from a different template")
        for name, data in letter.media:
            if name not in self._media:
                self._media.add(name)
                self._write(*compress(name, data, tpl.compresslevel, tpl._stamp))
        links: Dict[str, str] = {}     # the letter's rIds in the body -> ours
        heads: Dict[str, str] = {}     # the template's header/footer rIds -> this letter's copies
        added: Dict[str, list] = collections.defaultdict(list)
        for src, rid, reltype, target, external in letter.rels:
            if src != tpl._doc_name:
                added[src].append((rid, reltype, target, external))
            elif (reltype, target, external) not in self._shared:
                new = self._shared[(reltype, target, external)] = f"rIdLpM{len(self._shared) + 1}"
                links[rid] = new
                self._rels.write(rel_xml(links[rid], reltype, target, external).encode("utf-8"))
            else:
                links[rid] = self._shared[(reltype, target, external)]
        parts, doc_dir = dict(letter.parts), tpl._doc_name.rpartition("/")[0] + "/"
        for k, (name, rid, reltype, ctype) in enumerate(tpl._header_parts, 1):
            data, copy = parts.pop(name), name
            if n:   # the first letter uses the template's own header parts, the others copies
                copy, heads[rid] = f"{name.rsplit('.', 1)[0]}-{n + 1}.xml", f"rIdLpH{n + 1}_{k}"
                target = copy[len(doc_dir):] if copy.startswith(doc_dir) else "/" + copy
                self._rels.write(rel_xml(heads[rid], reltype, target, False).encode("utf-8"))
                self._types.write(f'<Override PartName="/{copy}" ContentType="{ctype}"/>'.encode())
            self._part(copy, data, tpl._part_rels.get(name), added[name])
        for name, data in parts.items() if not n else ():   # footnotes, properties: letter 1's
            self._part(name, data, tpl._part_rels.get(name), added[name])

        def remap(xml: str, mapping: Dict[str, str]) -> str:
            return _RID.sub(lambda m: m.group(1) + mapping.get(m.group(2), m.group(2))
                            + m.group(3), xml) if mapping else xml
        fast = None if links else tpl._merge_form(letter)
        if fast:    # precompressed pieces, copied: nothing in them to rename
            (items, last), sect = fast, remap(tpl._break_sect, heads)
        else:
            content, sect = tpl._split_section(tpl._body_text(letter))
            content, sect = remap(content, {**links, **heads}), remap(sect, {**links, **heads})
            if "docPr" in content:
                content, self._docpr = renumber_docpr(content, self._docpr)
            at = last_paragraph(content)
            at = len(content) if at is None else at
            items, last = [(content[:at].encode("utf-8", "replace"), None, False)], content[at:]
        self._flush(section_break=True)
        self._pending, self._count = (items, last, sect), n + 1

    def _flush(self, section_break: bool) -> None:
        """Write the letter held back until it was known whether another follows."""
        if self._pending is not None:
            items, last, sect = self._pending
            for plain, packed, store in items:
                self._body.write(plain, packed, store)
            tail = end_section(last, sect) if section_break else last + sect
            self._body.write(tail.encode("utf-8", "replace"), store=True)
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
        tpl, stamp = self._tpl, self._tpl._stamp
        self._flush(section_break=False)
        self._body.write(tpl._doc_suffix)
        self._rels.write(b"</Relationships>")
        self._types.write(b"</Types>")
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
            copy(self._body.finish(tpl._doc_name, stamp), self._body.file)
            copy(self._rels.finish(rels_name(tpl._doc_name), stamp), self._rels.file)
            cd_start = out.tell()
            out.write(cds[0])
            self._records.seek(0)
            for _ in range(self._members):
                head = bytearray(self._records.read(_CENTRAL.size))
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
