"""The template as python-docx sees it, for docxtpl's sub-documents (``new_subdoc``).

docxtpl's :class:`~docxtpl.subdoc.Subdoc` adds a sub-document's pictures, styles and
numbering to the template's python-docx ``Document`` (through docxcompose) and gives
the XML of its body, which refers to them. The fast renderer reads that document
again whenever it changed (:func:`fingerprint`), so letters and the merged document
have every part a sub-document refers to.
"""
from __future__ import annotations

import hashlib
import io
from typing import Any

CORE_CP = "http://schemas.openxmlformats.org/package/2006/metadata/core-properties"


def restore_namespaces() -> None:
    """Undo docxcompose's change to python-docx's namespace map.

    Importing docxcompose (docxtpl does, for sub-documents) maps the prefix ``cp`` to the
    custom-properties namespace in python-docx's own map, after which python-docx writes a
    document's keywords, revision and "last modified by" in that wrong namespace. docxcompose
    reads custom properties with its own map, so python-docx's can be put back."""
    from docx.oxml.ns import nsmap

    nsmap["cp"] = CORE_CP


def fingerprint(document: Any) -> str:
    """A digest of every part of a python-docx document (what changing it would change)."""
    digest = hashlib.sha1()
    for part in document.part.package.iter_parts():
        digest.update(str(part.partname).encode("utf-8") + b"\0")
        digest.update(part.blob or b"")
        for rel in part.rels.values():
            digest.update(f"{rel.rId} {rel.reltype} {rel.target_ref}\0".encode("utf-8"))
    return digest.hexdigest()


def save(document: Any) -> bytes:
    """The python-docx document as .docx bytes."""
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()
