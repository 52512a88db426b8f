"""Writing the zip of a .docx: members compressed, copied or joined from ready pieces.

A .docx is a zip of XML parts, and a letter differs from its template in a few of
them (the body, headers and footers with fields, sometimes images). The other
members are copied as the template's already-compressed bytes, and most of each
rendered part as pieces deflated once per template (:func:`join_deflated`), so
writing a letter compresses little. Reading a template's package is
:mod:`letterpress.docx.package`; many letters in one document, :mod:`letterpress.docx.merge`.
"""
from __future__ import annotations

import collections
import posixpath
import struct
import zlib
from typing import Iterable, List, Optional, Tuple

_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_STORED_EXTS = ("png", "jpg", "jpeg", "gif")  # already compressed: deflating again wastes time
_RELS_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_ESCAPES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"), ("\n", "&#10;"),
            ("\r", "&#13;"), ("\t", "&#9;"))

#: One zip member as its headers describe it (``csize``/``usize``: compressed/plain size).
Member = collections.namedtuple(
    "Member", "name method flags dostime dosdate crc csize usize made_by eattr", defaults=(20, 0))


def xml_escape(text: str) -> str:
    """``&``, ``<`` and ``>`` as XML entities (element text)."""
    if "&" in text or "<" in text or ">" in text:
        text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text


def quoteattr(text: str) -> str:
    """``text`` as a double-quoted XML attribute value."""
    for char, entity in _ESCAPES:
        if char in text:
            text = text.replace(char, entity)
    return f'"{text}"'


def _flags(name: str) -> int:
    return 0 if name.isascii() else 0x800    # bit 11: the name is UTF-8


def compress(name: str, data: bytes, level: int, stamp: Tuple[int, int]) -> Tuple[Member, bytes]:
    """A new member for ``data``: deflated, or stored for images that do not shrink."""
    stored, raw = name.rsplit(".", 1)[-1].lower() in _STORED_EXTS, data
    if not stored:   # a window to suit the data: zlib's full set-up costs more than a small part
        bits = min(15, max(10, len(data).bit_length() + 1))
        z = zlib.compressobj(level, zlib.DEFLATED, -bits, bits - 7)
        raw = z.compress(data) + z.flush()
    return Member(name, 0 if stored else 8, _flags(name), *stamp, zlib.crc32(data), len(raw),
                  len(data)), raw


def precompress(data: bytes, level: int) -> bytes:
    """``data`` deflated on its own, byte-aligned and not final: a piece to join."""
    bits = min(15, max(10, len(data).bit_length() + 1))
    z = zlib.compressobj(level, zlib.DEFLATED, -bits, bits - 7)
    return z.compress(data) + z.flush(zlib.Z_SYNC_FLUSH)


def stored_blocks(plain: bytes) -> bytes:
    """``plain`` as deflate "stored" (copied, not compressed) blocks, not final."""
    if len(plain) <= 0xFFFF:
        return struct.pack("<BHH", 0, len(plain), len(plain) ^ 0xFFFF) + plain
    return b"".join(struct.pack("<BHH", 0, len(b), len(b) ^ 0xFFFF) + b
                    for b in (plain[i:i + 65535] for i in range(0, len(plain), 65535)))


def join_deflated(name: str, items: Iterable[Tuple[bytes, Optional[bytes]]],
                  stamp: Tuple[int, int]) -> Tuple[Member, bytes]:
    """A member from (plain, packed) pieces, ``packed`` being :func:`precompress` of
    ``plain`` or None to store it: no compression happens here."""
    out, crc, size, crc32, store = [], 0, 0, zlib.crc32, stored_blocks
    for plain, packed in items:
        crc, size = crc32(plain, crc), size + len(plain)
        out.append(store(plain) if packed is None else packed)
    out.append(b"\x03\x00")     # the final, empty block
    raw = b"".join(out)
    return Member(name, 8, _flags(name), *stamp, crc, len(raw), size), raw


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


CENTRAL_SIZE = _CENTRAL.size
LOCAL_SIZE = _LOCAL.size


def unpack_local(data: bytes, offset: int) -> tuple:
    """The fields of the local header at ``offset`` (see :func:`local_header`)."""
    return _LOCAL.unpack_from(data, offset)


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
    local, central = _LOCAL.pack, _CENTRAL.pack
    for m, raw in members:
        name = m.name.encode("utf-8")
        if m.csize > 0xFFFFFFFE or m.usize > 0xFFFFFFFE or offset > 0xFFFFFFFE:
            raise ValueError(f"{m.name} would make the document larger than 4 GiB")
        header = local(0x04034B50, 20, m.flags, m.method, m.dostime, m.dosdate, m.crc, m.csize,
                       m.usize, len(name), 0) + name
        pieces += (header, raw)
        cds.append(central(0x02014B50, m.made_by, 20, m.flags, m.method, m.dostime, m.dosdate,
                           m.crc, m.csize, m.usize, len(name), 0, 0, 0, 0, m.eattr, offset) + name)
        offset, count = offset + len(header) + len(raw), count + 1
    cd = b"".join(cds)
    return pieces + [cd, end_records(count, offset, len(cd))]


def rels_name(part: str) -> str:
    """``word/document.xml`` -> ``word/_rels/document.xml.rels``."""
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
