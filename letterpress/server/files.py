"""Sending a round's files to staff: right content type, a Chinese name that survives download."""
from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from flask import send_file

from letterpress.files import safe_filename

CONTENT_TYPES = {
    ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".csv": "text/csv",
    ".zip": "application/zip",
    ".png": "image/png",
}


def content_disposition(filename: str, inline: bool = False) -> str:
    """RFC 6266: an ASCII ``filename`` fallback and the UTF-8 ``filename*``."""
    ascii_name = filename.encode("ascii", "replace").decode().replace("?", "_")
    ascii_name = ascii_name.replace('"', "_").replace("\\", "_")
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


def download_name(title: str, name: str) -> str:
    """``<round title> <file>`` as a safe file name, e.g. ``2020-02-24 青鱼嘴 slips.pdf``."""
    stem = safe_filename(title, "round", limit=60)
    return f"{stem} {name.replace('/', ' ')}"


def download(rnd: dict, path: Path, name: str):
    """The file as an attachment named after the round; a report is made fresh first."""
    if name.startswith("report."):
        from letterpress.server.console_ops import ledger
        from letterpress.server.roundwork import make_report

        path = make_report(ledger(), rnd, path.parent.parent, name)
    response = send_file(path, mimetype=CONTENT_TYPES.get(path.suffix.lower(),
                                                          "application/octet-stream"),
                         max_age=0, conditional=False)
    response.headers["Content-Disposition"] = content_disposition(
        download_name(rnd["title"], name))
    return response
