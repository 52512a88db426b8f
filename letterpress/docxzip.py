"""The package side of a .docx: reading a template zip, writing ours, merging letters.

A .docx is a zip of XML parts. A letter differs from its template in a few parts
only (the body, headers and footers with fields, sometimes images), so the
template's other members are copied as their already-compressed bytes, and the
body is written from pieces deflated once per template (see
:func:`join_deflated`). :class:`MergedDocument` writes many letters into one
.docx, each letter its own section starting on a new page, streaming through
zlib into temporary files so memory stays flat however many letters there are.
"""
from __future__ import annotations

import contextlib
import io
import posixpath
import re
import shutil
import struct
import tempfile
import zipfile
import zlib
from typing import IO, Dict, Iterable, List, NamedTuple, Optional, Tuple
from xml.sax.saxutils import quoteattr

from lxml import etree

from .files import PathLike, atomic_path

_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_EOCD = struct.Struct("<IHHHHIIH")
_ZIP64_EOCD = struct.Struct("<IQHHIIQQQQ")
_ZIP64_LOCATOR = struct.Struct("<IIQI")
_RECORD = struct.Struct("<HHHHIQQHHIQ")   # a spooled central-directory entry
_MAX32 = 0xFFFFFFFF
_STORED_EXTS = ("png", "jpg", "jpeg", "gif")  # already compressed: deflating again wastes time

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
RT_IMAGE, RT_HYPERLINK, RT_HEADER, RT_FOOTER = (_R + t for t in ("image", "hyperlink", "header", "footer"))
RT_CORE = "http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties"
CT_MAIN = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
CT_FOOTNOTES = "application/vnd.openxmlformats-officedocument.wordprocessingml.footnotes+xml"
XML_DECL = b"<?xml version='1.0' encoding='UTF-8' standalone='yes'?>\n"
DEFAULT_BREAK = '<w:sectPr><w:type w:val="nextPage"/></w:sectPr>'
_PARSER = etree.XMLParser(remove_blank_text=True, resolve_entities=False)  # python-docx's settings
_SAVE_AS = "open it in Word or WPS and save it as a Word document (.docx), then use that file"


class NotDocx(Exception):
    """The file is not a .docx we can use; ``hint`` says what to do."""

    def __init__(self, message: str, hint: str = _SAVE_AS) -> None:
        super().__init__(message)
        self.hint = hint


class Member(NamedTuple):
    """One zip member as its headers describe it (``csize``/``usize``: compressed/plain sizes)."""

    name: str
    method: int
    flags: int
    dostime: int
    dosdate: int
    crc: int
    csize: int
    usize: int
    made_by: int = 20
    eattr: int = 0


def compress(name: str, data: bytes, level: int, stamp: Tuple[int, int]) -> Tuple[Member, bytes]:
    """A new member for ``data``: deflated (raw stream), or stored for images that do not shrink."""
    stored, raw = name.rsplit(".", 1)[-1].lower() in _STORED_EXTS, data
    if not stored:   # a window to suit the data: setting up zlib's full state costs more than a small part
        bits = min(15, max(10, len(data).bit_length() + 1))
        z = zlib.compressobj(level, zlib.DEFLATED, -bits, bits - 7)
        raw = z.compress(data) + z.flush()
    return Member(name, 0 if stored else 8, 0 if name.isascii() else 0x800, stamp[0], stamp[1],
                  zlib.crc32(data), len(raw), len(data)), raw


def precompress(data: bytes, level: int) -> bytes:
    """``data`` deflated on its own, byte-aligned and not final: a piece for :func:`join_deflated`."""
    z = zlib.compressobj(level, zlib.DEFLATED, -15)
    return z.compress(data) + z.flush(zlib.Z_SYNC_FLUSH)


def stored_blocks(plain: bytes) -> bytes:
    """``plain`` as deflate "stored" blocks (not final): copied, not compressed."""
    return b"".join(struct.pack("<BHH", 0, len(b), len(b) ^ 0xFFFF) + b
                    for b in (plain[i:i + 65535] for i in range(0, len(plain), 65535)))


def join_deflated(name: str, items: Iterable[Tuple[bytes, Optional[bytes]]],
                  stamp: Tuple[int, int]) -> Tuple[Member, bytes]:
    """A member from (plain, packed) pieces: ``packed`` is :func:`precompress` of ``plain``,
    or None to store ``plain`` as it is. No compression happens here."""
    out, crc, size = [], 0, 0
    for plain, packed in items:
        crc, size = zlib.crc32(plain, crc), size + len(plain)
        out.append(stored_blocks(plain) if packed is None else packed)
    out.append(b"\x03\x00")     # the final, empty block
    raw = b"".join(out)
    return Member(name, 8, 0, stamp[0], stamp[1], crc, len(raw), size), raw


def local_header(m: Member) -> bytes:
    name = m.name.encode("utf-8")
    if m.csize >= _MAX32 or m.usize >= _MAX32:
        extra = struct.pack("<HHQQ", 1, 16, m.usize, m.csize)
        return _LOCAL.pack(0x04034B50, 45, m.flags, m.method, m.dostime, m.dosdate, m.crc,
                           _MAX32, _MAX32, len(name), len(extra)) + name + extra
    return _LOCAL.pack(0x04034B50, 20, m.flags, m.method, m.dostime, m.dosdate, m.crc,
                       m.csize, m.usize, len(name), 0) + name


def central_header(m: Member, offset: int) -> bytes:
    name = m.name.encode("utf-8")
    big = m.csize >= _MAX32 or m.usize >= _MAX32
    extra = struct.pack("<QQ", m.usize, m.csize) if big else b""
    if offset >= _MAX32:
        extra += struct.pack("<Q", offset)
    if extra:
        extra = struct.pack("<HH", 1, len(extra)) + extra
    return _CENTRAL.pack(0x02014B50, m.made_by, 45 if extra else 20, m.flags, m.method,
                         m.dostime, m.dosdate, m.crc, _MAX32 if big else m.csize,
                         _MAX32 if big else m.usize, len(name), len(extra), 0, 0, 0, m.eattr,
                         min(offset, _MAX32)) + name + extra


def end_records(count: int, cd_offset: int, cd_size: int) -> bytes:
    """End of central directory, with the zip64 records when a field overflows."""
    out = b""
    if count >= 0xFFFF or cd_offset >= _MAX32 or cd_size >= _MAX32:
        out = (_ZIP64_EOCD.pack(0x06064B50, 44, 45, 45, 0, 0, count, count, cd_size, cd_offset)
               + _ZIP64_LOCATOR.pack(0x07064B50, 0, cd_offset + cd_size, 1))
    return out + _EOCD.pack(0x06054B50, 0, 0, min(count, 0xFFFF), min(count, 0xFFFF),
                            min(cd_size, _MAX32), min(cd_offset, _MAX32), 0)


def zip_pieces(head: bytes, head_cd: bytes, head_count: int,
               members: Iterable[Tuple[Member, bytes]]) -> List[bytes]:
    """A whole zip as pieces to join or write in order: a prepared block of members
    (with its central directory) first, then ``members``."""
    pieces, cds, offset, count = [head], [head_cd], len(head), head_count
    for member, raw in members:
        header = local_header(member)
        pieces += (header, raw)
        cds.append(central_header(member, offset))
        offset += len(header) + len(raw)
        count += 1
    cd = b"".join(cds)
    return pieces + [cd, end_records(count, offset, len(cd))]


def rels_name(part: str) -> str:
    head, tail = posixpath.split(part)
    return posixpath.join(head, "_rels", tail + ".rels")


def rel_xml(rid: str, reltype: str, target: str, external: bool) -> str:
    mode = ' TargetMode="External"' if external else ""
    return f"<Relationship Id={quoteattr(rid)} Type={quoteattr(reltype)} Target={quoteattr(target)}{mode}/>"


def rels_document(existing: Optional[str], rels: Iterable[Tuple[str, str, str, bool]]) -> bytes:
    """A .rels part: ``existing`` (the template's, or None) plus ``rels``."""
    if existing is None:
        existing = f'<Relationships xmlns="{_PKG_NS}"></Relationships>'
    at = existing.rindex("</Relationships>")
    return (existing[:at] + "".join(rel_xml(*r) for r in rels) + existing[at:]).encode("utf-8")


_PKG_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_CT_NS = "{http://schemas.openxmlformats.org/package/2006/content-types}"


class Package:
    """A template .docx as the renderer needs it: members (raw), content types, relationships.

    Raises :class:`NotDocx` for anything that is not a usable Word document.
    """

    def __init__(self, data: bytes) -> None:
        if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
            raise NotDocx("this is an old-style Word .doc file (or a password-protected document), "
                          "not a .docx", "open it in Word or WPS, remove any password and save it "
                          "as a Word document (.docx)")
        try:
            self.members = read_members(data)
            self._zip = zipfile.ZipFile(io.BytesIO(data))
            self._names = {m.name for m, _ in self.members}
            self.types_xml = self._text("[Content_Types].xml")
            types = etree.fromstring(self.types_xml.encode("utf-8"))
            self.overrides = {e.get("PartName", "").lstrip("/"): e.get("ContentType")
                              for e in types.iter(_CT_NS + "Override")}
            self.defaults = {e.get("Extension", "").lower(): e.get("ContentType")
                             for e in types.iter(_CT_NS + "Default")}
            pkg_rels = self.rels("")
            office = _R.replace("relationships/", "relationships/officeDocument")
            self.doc = next((t for _, rt, t, ext in pkg_rels if rt == office and not ext),
                            "word/document.xml")
            self.core = next((t for _, rt, t, ext in pkg_rels if rt == RT_CORE and not ext), None)
            if self.core not in self._names:
                self.core = None
        except NotDocx:
            raise
        except (zipfile.BadZipFile, zipfile.LargeZipFile, etree.XMLSyntaxError, EOFError,
                OSError, ValueError, zlib.error) as exc:
            raise NotDocx(f"this is not a Word .docx file ({exc})") from None
        if self.doc not in self._names:
            raise NotDocx(f"it has no {self.doc}, so it is not a Word document")
        ctype = self.overrides.get(self.doc) or self.defaults.get(self.doc.rsplit(".", 1)[-1])
        if ctype != CT_MAIN:
            raise NotDocx(f"its main part is {ctype!r}, not a plain Word document "
                          "(a macro-enabled .docm, or a .dotx template?)")
        info = self._zip.getinfo(self.doc)
        y, mo, d, h, mi, s = info.date_time
        self.stamp = ((h << 11) | (mi << 5) | (s // 2), (max(y, 1980) - 1980) << 9 | (mo << 5) | d)

    def _text(self, name: str) -> str:
        if name not in self._names:
            raise NotDocx(f"it has no {name}, so it is not a Word document")
        return self._zip.read(name).decode("utf-8")

    def blob(self, name: str) -> Optional[bytes]:
        return self._zip.read(name) if name in self._names else None

    def rels_xml(self, part: str) -> Optional[str]:
        name = rels_name(part)
        return self._text(name) if name in self._names else None

    def rels(self, part: str) -> List[Tuple[str, str, str, bool]]:
        """(rId, type, target part name or URL, external) of ``part``'s relationships, in order."""
        xml, out = self.rels_xml(part), []
        for e in etree.fromstring(xml.encode("utf-8")) if xml else ():
            external, target = e.get("TargetMode") == "External", e.get("Target", "")
            if not external:
                target = target[1:] if target.startswith("/") else posixpath.normpath(
                    posixpath.join(posixpath.dirname(part), target))
            out.append((e.get("Id"), e.get("Type"), target, external))
        return out


def read_members(data: bytes) -> List[Tuple[Member, bytes]]:
    """Every file member of the zip in ``data`` with its raw (still compressed) bytes."""
    zf = zipfile.ZipFile(io.BytesIO(data))
    bad = zf.testzip()
    if bad is not None:
        raise zipfile.BadZipFile(f"member {bad} is damaged")
    out = []
    for info in zf.infolist():
        if info.is_dir():
            continue
        y, mo, d, h, mi, s = info.date_time
        stamp = ((h << 11) | (mi << 5) | (s // 2), (max(y, 1980) - 1980) << 9 | (mo << 5) | d)
        if info.flag_bits & 1 or info.compress_type not in (0, 8):
            member, raw = compress(info.filename, zf.read(info), 6, stamp)
        else:
            *_, nlen, elen = _LOCAL.unpack_from(data, info.header_offset)
            start = info.header_offset + _LOCAL.size + nlen + elen
            raw = data[start:start + info.compress_size]
            member = Member(info.filename, info.compress_type, info.flag_bits & 0x0806,
                            stamp[0], stamp[1], info.CRC, len(raw), info.file_size)
        made_by = info.create_version | info.create_system << 8
        out.append((member._replace(made_by=made_by, eattr=info.external_attr), raw))
    return out


def split_body(raw: bytes) -> Tuple[str, str, bytes, bytes]:
    """The body of document.xml as docxtpl sees it (``<w:body>...</w:body>``), the body's
    start tag with every namespace declaration, and the document's bytes before and after."""
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
    close = raw.rfind(b"</w:body>")
    return "<w:body>" + src[end:], src[:end], raw[:found.start()], raw[close + 9:]


def reserialize(blob: bytes) -> str:
    """A part's XML as docxtpl sees it: parsed like python-docx does and written back."""
    return etree.tostring(etree.fromstring(blob, _PARSER), encoding="unicode")


_SECT = re.compile(r"<w:sectPr(?=[ >/])[^>]*?(/?)>|</w:sectPr>")
_DOCPR = re.compile(r'(<wp:docPr\b[^>]*?\sid=")[^"]*(")')
_RID = re.compile(r'(r:\w+=")([^"]+)(")')


def last_sectpr(xml: str) -> int:
    """Where the section properties that end ``xml`` (a body's content) start, or -1."""
    if not xml.endswith("</w:sectPr>"):
        return -1
    depth = 0
    for m in reversed(list(_SECT.finditer(xml))):
        depth += 1 if m.group(0) == "</w:sectPr>" else (0 if m.group(1) else -1)
        if depth == 0:
            return m.start()
    return -1


def section_break(sectpr: str, body_open: str) -> str:
    """``sectpr`` as a section that starts on a new page (``<w:type w:val="nextPage"/>``)."""
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
    """Give every ``wp:docPr`` in ``xml`` a new id from ``start`` on; returns the next free id."""
    counter = [start - 1]

    def repl(m):
        counter[0] += 1
        return f"{m.group(1)}{counter[0]}{m.group(2)}"
    return _DOCPR.sub(repl, xml), counter[0] + 1


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
    """The last paragraph of a letter with ``sectpr`` in it (as Word ends a section), or a
    new empty paragraph holding it when ``paragraph`` is not one."""
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


class _DeflateSpool:
    """A zip member's data deflated into a temporary file as it is written."""

    def __init__(self, level: int, where) -> None:
        self.file = tempfile.TemporaryFile(dir=where)
        self._z = zlib.compressobj(level, zlib.DEFLATED, -15)
        self.crc = self.size = 0
        self._dirty = False

    def write(self, data: bytes, packed: Optional[bytes] = None, store: bool = False) -> None:
        """Compress ``data``; or write it as stored blocks (``store``), or as ``packed``
        (:func:`precompress` of it). Those follow a full flush, so nothing refers across."""
        self.crc = zlib.crc32(data, self.crc)
        self.size += len(data)
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
        return Member(name, 8, 0 if name.isascii() else 0x800, stamp[0], stamp[1],
                      self.crc, csize, self.size)


class MergedDocument:
    """One .docx holding many letters of one template, each starting on a new page.

    Like Word's "merge to new document": every letter becomes its own section
    (its section properties moved into a section break of type "next page"), so
    it keeps its own headers and footers. Headers and footers with fields get a
    copy per letter; static ones are shared. Image and hyperlink relationships
    and drawing ids are renumbered so they stay unique.

    Letters are streamed to temporary files beside ``path`` as they are added (in
    that order); the file appears under ``path`` only when :meth:`close` succeeds::

        with MergedDocument(template, "letters.docx") as merged:
            for context in contexts:
                merged.add(template.render(context))
    """

    def __init__(self, template, path: PathLike) -> None:
        self._tpl, self._stack, self._done = template, contextlib.ExitStack(), False
        self._tmp = self._stack.enter_context(atomic_path(path))
        self._files: List[IO[bytes]] = []
        try:
            where, level = self._tmp.parent, template.compresslevel
            self._data = self._temp(tempfile.TemporaryFile(dir=where))     # members
            self._records = self._temp(tempfile.TemporaryFile(dir=where))  # their directory entries
            self._body, self._rels, self._types = (_DeflateSpool(level, where) for _ in range(3))
            for spool in (self._body, self._rels, self._types):
                self._temp(spool.file)
        except BaseException:
            self.abort()
            raise
        self._count = self._members = 0
        self._pending: Optional[Tuple[str, str]] = None
        self._shared: Dict[tuple, str] = {}    # (reltype, target, external) -> rId
        self._media: set = set()
        self._docpr = template._docpr_start
        self._body.write(template._doc_prefix)
        self._rels.write(template._part_rels[template._doc_name].encode("utf-8")
                         .rsplit(b"</Relationships>", 1)[0])
        self._types.write(template._types_xml.encode("utf-8").rsplit(b"</Types>", 1)[0])
        for member, raw in template._static:
            if member.name != "[Content_Types].xml":
                self._write(member, raw)

    def _temp(self, f: IO[bytes]) -> IO[bytes]:
        self._files.append(f)
        return f

    def __enter__(self) -> "MergedDocument":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False

    def __len__(self) -> int:
        return self._count

    def _write(self, member: Member, raw: bytes) -> None:
        offset = self._data.tell()
        self._data.write(local_header(member))
        self._data.write(raw)
        name = member.name.encode("utf-8")
        self._records.write(_RECORD.pack(member.method, member.flags, member.dostime,
                                         member.dosdate, member.crc, member.csize, member.usize,
                                         member.made_by, len(name), member.eattr, offset) + name)
        self._members += 1

    def _part(self, name: str, data: bytes) -> None:
        self._write(*compress(name, data, self._tpl.compresslevel, self._tpl._stamp))

    def _part_with_rels(self, name: str, data: bytes, existing: Optional[str], added: list) -> None:
        if b"docPr" in data:
            text, self._docpr = renumber_docpr(data.decode("utf-8"), self._docpr)
            data = text.encode("utf-8")
        self._part(name, data)
        if existing is not None or added:
            self._part(rels_name(name), rels_document(existing, added))

    def _relate(self, reltype: str, target: str, external: bool) -> str:
        key = (reltype, target, external)
        if key not in self._shared:
            rid = self._shared[key] = f"rIdLpM{len(self._shared) + 1}"
            self._rels.write(rel_xml(rid, reltype, target, external).encode("utf-8"))
        return self._shared[key]

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
                self._part(name, data)
        links: Dict[str, str] = {}     # the letter's rIds in the body -> ours
        heads: Dict[str, str] = {}     # the template's header/footer rIds -> this letter's copies
        added: Dict[str, list] = {}
        for src, rid, reltype, target, external in letter.rels:
            if src == tpl._doc_name:
                links[rid] = self._relate(reltype, target, external)
            else:
                added.setdefault(src, []).append((rid, reltype, target, external))
        parts, doc_dir = dict(letter.parts), tpl._doc_name.rpartition("/")[0] + "/"
        for k, (name, rid, reltype, ctype) in enumerate(tpl._header_parts, 1):
            data, existing, copy = parts.pop(name), tpl._part_rels.get(name), name
            if n:   # the first letter uses the template's own header parts, the others copies
                copy, heads[rid] = f"{name.rsplit('.', 1)[0]}-{n + 1}.xml", f"rIdLpH{n + 1}_{k}"
                target = copy[len(doc_dir):] if copy.startswith(doc_dir) else "/" + copy
                self._rels.write(rel_xml(heads[rid], reltype, target, False).encode("utf-8"))
                self._types.write(f'<Override PartName="/{copy}" ContentType="{ctype}"/>'.encode())
            self._part_with_rels(copy, data, existing, added.get(name, []))
        if not n:   # footnotes and document properties: the first letter's
            for name, data in parts.items():
                self._part_with_rels(name, data, tpl._part_rels.get(name), added.get(name, []))

        def remap(xml: str, mapping: Dict[str, str]) -> str:
            return _RID.sub(lambda m: m.group(1) + mapping.get(m.group(2), m.group(2))
                            + m.group(3), xml) if mapping else xml
        fast = None if links else tpl._merge_form(letter)
        if fast:    # precompressed pieces, copied: nothing to rename in them
            items, last = fast
            sect = remap(tpl._break_sect, heads)
        else:
            content, sect = tpl._split_section(tpl._body_text(letter))
            mapping = {**links, **heads}
            content, sect = remap(content, mapping), remap(sect, mapping)
            if "docPr" in content:
                content, self._docpr = renumber_docpr(content, self._docpr)
            at = last_paragraph(content)
            at = len(content) if at is None else at
            items, last = [(content[:at].encode("utf-8", "replace"), None, False)], content[at:]
        self._flush(section_break=True)
        self._pending = (items, last, sect)
        self._count += 1

    def _flush(self, section_break: bool) -> None:
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
            entries: List[Tuple[Member, int]] = []

            def copy(member: Member, source: IO[bytes]) -> None:
                entries.append((member, out.tell()))
                out.write(local_header(member))
                shutil.copyfileobj(source, out, 1 << 20)

            copy(self._types.finish("[Content_Types].xml", stamp), self._types.file)
            shift = out.tell()
            self._data.seek(0)
            shutil.copyfileobj(self._data, out, 1 << 20)
            copy(self._body.finish(tpl._doc_name, stamp), self._body.file)
            copy(self._rels.finish(rels_name(tpl._doc_name), stamp), self._rels.file)
            cd_start = out.tell()
            out.write(central_header(*entries[0]))
            self._records.seek(0)
            for _ in range(self._members):
                f = _RECORD.unpack(self._records.read(_RECORD.size))
                name = self._records.read(f[8]).decode("utf-8")
                member = Member(name, *f[:7], f[7], f[9])
                out.write(central_header(member, f[10] + shift))
            for entry in entries[1:]:
                out.write(central_header(*entry))
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
