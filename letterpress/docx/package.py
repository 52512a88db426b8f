"""Reading a template .docx: its raw zip members, content types, relationships and body.

:class:`Package` keeps every member as the template's already-compressed bytes (so
that letters copy them unchanged) and tells what the renderer needs to know: the
main document part, its relationships, the content types. Anything that is not a
usable Word document raises :class:`NotDocx`, with a hint.
"""
from __future__ import annotations

import io
import posixpath
import re
import struct
import zipfile
import zlib
from typing import List, Optional, Tuple

from lxml import etree

from letterpress.docx.zipwriter import (
    LOCAL_SIZE,
    Member,
    compress,
    rels_name,
    unpack_local,
)
from letterpress.i18n import N_, _

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
RT_IMAGE, RT_HYPERLINK, RT_HEADER, RT_FOOTER, RT_OFFICE = (
    _R + t for t in ("image", "hyperlink", "header", "footer", "officeDocument"))
RT_CORE = "http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties"
_WML = "application/vnd.openxmlformats-officedocument.wordprocessingml."
CT_MAIN, CT_FOOTNOTES = _WML + "document.main+xml", _WML + "footnotes+xml"
_CT_NS = "{http://schemas.openxmlformats.org/package/2006/content-types}"
XML_DECL = b"<?xml version='1.0' encoding='UTF-8' standalone='yes'?>\n"
_PARSER = etree.XMLParser(remove_blank_text=True, resolve_entities=False)  # as python-docx
_SAVE_AS = N_("open it in Word or WPS and save it as a Word document (.docx), then use that "
              "file")


class NotDocx(Exception):
    """The file is not a .docx we can use; ``hint`` says what to do."""

    def __init__(self, message: str, hint: Optional[str] = None) -> None:
        super().__init__(message)
        self.hint = hint if hint is not None else _(_SAVE_AS)


class Package:
    """A template .docx as the renderer needs it: raw members, content types, relationships.
    Raises :class:`NotDocx` for anything that is not a usable Word document."""

    def __init__(self, data: bytes) -> None:
        if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
            raise NotDocx(_("this is an old-style Word .doc file (or a password-protected "
                            "document), not a .docx"), _("open it in Word or WPS, remove any "
                                                      "password and save it as a Word document "
                                                      "(.docx)"))
        try:
            self._zip = zipfile.ZipFile(io.BytesIO(data))
            if self._zip.testzip() is not None:
                raise zipfile.BadZipFile("a member is damaged")
            self.members = [self._raw_member(data, info) for info in self._zip.infolist()
                            if not info.is_dir()]
            self._names = {m.name for m, _ in self.members}
            self.types_xml = self.text("[Content_Types].xml")
            if self.types_xml is None:
                raise NotDocx(_("it has no [Content_Types].xml, so it is not a Word document"))
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
            raise NotDocx(_("this is not a Word .docx file (%(exc)s)", exc=exc)) from None
        if self.doc not in self._names:
            raise NotDocx(_("it has no %(doc)s, so it is not a Word document", doc=self.doc))
        ctype = self.overrides.get(self.doc) or self.defaults.get(self.doc.rsplit(".", 1)[-1])
        if ctype != CT_MAIN:
            raise NotDocx(_("its main part is %(ctype)r, not a plain Word document (a "
                            "macro-enabled .docm, or a .dotx template?)", ctype=ctype))
        self.stamp = next(m for m, _ in self.members if m.name == self.doc)[3:5]

    def _raw_member(self, data: bytes, info: zipfile.ZipInfo) -> Tuple[Member, bytes]:
        y, mo, d, h, mi, s = info.date_time
        stamp = ((h << 11) | (mi << 5) | (s // 2), (max(y, 1980) - 1980) << 9 | (mo << 5) | d)
        if info.flag_bits & 1 or info.compress_type not in (0, 8):   # recompress the odd ones
            member, raw = compress(info.filename, self._zip.read(info), 6, stamp)
        else:
            *_, nlen, elen = unpack_local(data, info.header_offset)
            start = info.header_offset + LOCAL_SIZE + nlen + elen
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
        raise NotDocx(_("its document.xml is damaged (%(exc)s)", exc=exc)) from None
    found = re.search(rb"<w:body[\s>/]", raw)
    if body is None or found is None:
        raise NotDocx(_("its document.xml has no body that this program can read"))
    src = etree.tostring(body, encoding="unicode")
    end = src.index(">") + 1
    if src[end - 2] == "/":
        return "<w:body></w:body>", src[:end - 2] + ">", raw[:found.start()], raw[end:]
    return "<w:body>" + src[end:], src[:end], raw[:found.start()], raw[raw.rfind(b"</w:body>") + 9:]


def reserialize(blob: bytes) -> str:
    """A part's XML as docxtpl sees it: parsed as python-docx does and written back."""
    return etree.tostring(etree.fromstring(blob, _PARSER), encoding="unicode")
