"""Uploaded files are hostile until proven otherwise.

An upload is read in chunks up to a size cap, its type is found from its
content (never its name), zip containers are checked for bombs, a password-
protected workbook is recognised, and it is stored under the round's own
``uploads/`` folder with a generated name. Nothing is written anywhere else.
"""
from __future__ import annotations

import io
import os
import secrets
import zipfile
from pathlib import Path
from typing import IO, Tuple

from letterpress.errors import InputError
from letterpress.i18n import _

#: Default largest upload, in bytes (``create_app(upload_limit=...)``).
DEFAULT_LIMIT = 20 * 1024 * 1024
#: A zip member may expand at most this many times, and all members to at most this size.
MAX_RATIO = 200
MAX_UNPACKED = 300 * 1024 * 1024
MAX_MEMBERS = 10_000
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_CHUNK = 64 * 1024


class TooLarge(InputError):
    """The upload is over the size cap (HTTP 413)."""


def read_capped(stream: IO[bytes], limit: int) -> bytes:
    """All of ``stream``, or :class:`TooLarge` as soon as it passes ``limit`` bytes."""
    buf = io.BytesIO()
    while True:
        chunk = stream.read(_CHUNK)
        if not chunk:
            return buf.getvalue()
        if buf.tell() + len(chunk) > limit:
            raise TooLarge(_("the file is larger than %(mb)s MB", mb=limit // (1024 * 1024)),
                           code="too_large", hint=_("upload a smaller file (save it without "
                                                    "pictures, or split the list)"))
        buf.write(chunk)


def _zip_kind(data: bytes) -> str:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, ValueError):
        raise InputError(_("the file looks like a damaged zip or Office file"), code="bad_upload",
                         hint=_("open it in Excel, WPS or Word and save it again")) from None
    total = sum(i.file_size for i in infos)
    if (len(infos) > MAX_MEMBERS or total > MAX_UNPACKED
            or any(i.file_size > MAX_RATIO * max(i.compress_size, 1) + 1024 for i in infos)):
        raise InputError(_("the file unpacks to far more data than it holds (a zip bomb)"),
                         code="zip_bomb", hint=_("this is not a normal workbook or letter; "
                                                 "save the list again from Excel or WPS"))
    names = {i.filename for i in infos}
    if "mimetype" in names:
        mime = zf.read("mimetype")[:100]
        if b"opendocument.spreadsheet" in mime:
            return "ods"
        if b"opendocument.text" in mime:
            return "odt"
    if "word/document.xml" in names:
        return "docx"
    if any(n.startswith("xl/") for n in names):
        return "xlsx"
    return "zip"


def _ole_kind(data: bytes) -> str:
    # An Office file with a password is an OLE container holding an "EncryptionInfo"
    # stream (names are UTF-16 in the directory); an .xls with a password has a
    # FILEPASS record (0x002F) early in its Workbook stream.
    if "EncryptionInfo".encode("utf-16-le") in data or "EncryptedPackage".encode(
            "utf-16-le") in data:
        raise InputError(_("the workbook is protected with a password"), code="password_protected",
                         hint=_("open it in Excel or WPS, remove the password (File > Info > "
                                "Protect workbook), save and upload it again"))
    return "xls"


def sniff(data: bytes) -> str:
    """What the bytes are: ``xlsx``, ``ods``, ``xls``, ``docx``, ``csv``, ... by content."""
    if not data:
        raise InputError(_("the file is empty"), code="empty_upload",
                         hint=_("choose the recipient list again"))
    if data.startswith(b"PK\x03\x04"):
        return _zip_kind(data)
    if data.startswith(_OLE):
        return _ole_kind(data)
    if data.startswith((b"%PDF", b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"\x7fELF", b"MZ")):
        return "binary"
    head = data[:4096]
    if b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "binary"
    return "csv"


_RECIPIENT_KINDS = {"xlsx": ".xlsx", "ods": ".ods", "xls": ".xls", "csv": ".csv"}


def accept(stream: IO[bytes], purpose: str, limit: int = DEFAULT_LIMIT) -> Tuple[bytes, str]:
    """Read and check an upload: ``(data, suffix)`` with the suffix its content calls for.

    ``purpose`` is ``recipients`` (a spreadsheet or CSV) or ``template`` (a
    .docx). Raises :class:`TooLarge` or :class:`InputError` (``bad_upload``,
    ``zip_bomb``, ``password_protected``, ``wrong_type``...).
    """
    data = read_capped(stream, limit)
    kind = sniff(data)
    if purpose == "template":
        if kind != "docx":
            raise InputError(_("the letter template must be a Word document (.docx)"),
                             code="wrong_type", hint=_("in Word or WPS use Save As: Word "
                                                       "Document (.docx)"))
        return data, ".docx"
    if kind not in _RECIPIENT_KINDS:
        raise InputError(_("the recipient list must be a spreadsheet (.xlsx, .xls, .et, .ods) "
                           "or a CSV file"), code="wrong_type",
                         hint=_("in Excel or WPS use Save As: Excel Workbook (.xlsx)"))
    return data, _RECIPIENT_KINDS[kind]


def save(data: bytes, suffix: str, folder: Path, purpose: str) -> str:
    """Keep checked bytes as ``folder/uploads/<purpose>-<random><suffix>`` (owner-only);
    returns that path relative to ``folder``."""
    Path(folder).mkdir(mode=0o700, parents=True, exist_ok=True)
    target_dir = (Path(folder) / "uploads").resolve()
    target_dir.mkdir(mode=0o700, exist_ok=True)
    target = target_dir / f"{purpose}-{secrets.token_hex(8)}{suffix}"
    tmp = target.with_name(target.name + ".part")
    with open(tmp, "xb") as fh:
        fh.write(data)
    os.chmod(tmp, 0o600)
    os.replace(tmp, target)
    return f"uploads/{target.name}"
