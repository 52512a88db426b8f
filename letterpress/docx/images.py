"""What a letter adds to its package while it renders: pictures and relationships.

docxtpl's ``InlineImage`` asks ``tpl.current_rendering_part`` for a picture, as it
would ask python-docx's story part; :class:`RenderingPart` answers the same way
and records what the letter adds in a :class:`Sink`. python-docx is imported only
when a letter really has a picture.
"""
from __future__ import annotations

import io
import os
import posixpath
from typing import Dict, Optional

from letterpress.docx.package import RT_IMAGE

_IMAGE_EXT = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/bmp": "bmp",
              "image/tiff": "tiff"}


class Sink:
    """What one letter adds to the package: images and relationships."""

    __slots__ = ("rels", "media")

    def __init__(self) -> None:
        self.rels: Dict[tuple, str] = {}
        self.media: Dict[str, bytes] = {}

    def relate(self, part: str, reltype: str, target: str, external: bool,
               rid: Optional[str] = None) -> str:
        key = (part, reltype, target, external)
        if key not in self.rels:
            self.rels[key] = rid or f"rIdLp{len(self.rels) + 1}"
        return self.rels[key]

    def __len__(self) -> int:
        return len(self.rels) + len(self.media)


class RenderingPart:
    """``tpl.current_rendering_part`` while a part renders: where docxtpl's ``InlineImage``
    adds its picture (as python-docx's ``StoryPart.new_pic_inline`` would)."""

    def __init__(self, part, sink: Sink) -> None:
        self.name, self._sink, self._next_id = part.name, sink, part.next_id

    def relate_to(self, target: str, reltype: str, is_external: bool = False) -> str:
        return self._sink.relate(self.name, reltype, target, bool(is_external))

    def new_pic_inline(self, image_descriptor, width=None, height=None):
        from docx.image.image import Image
        from docx.oxml.shape import CT_Inline

        if isinstance(image_descriptor, (bytes, bytearray)):
            image_descriptor = io.BytesIO(image_descriptor)
        elif isinstance(image_descriptor, os.PathLike):
            image_descriptor = os.fspath(image_descriptor)
        image = Image.from_file(image_descriptor)
        ext = _IMAGE_EXT.get(image.content_type, image.ext.lower())
        media = f"word/media/lp-{image.sha1[:20]}.{ext}"
        self._sink.media[media] = image.blob
        rid = self.relate_to(posixpath.relpath(media, posixpath.dirname(self.name)), RT_IMAGE)
        cx, cy = image.scaled_dimensions(width, height)
        self._next_id += 1
        return CT_Inline.new_pic_inline(self._next_id - 1, rid, image.filename, cx, cy)


def image_types() -> Dict[str, str]:
    """Content type -> file name extension of the pictures a letter may add."""
    return dict(_IMAGE_EXT)
