"""What happens to a slip between the printer and a phone camera, with Pillow (seeded).

Used by ``tests/test_slip_damage.py`` (every layout's codes must read under the
damage of :data:`DOOR` and :data:`THERMAL`) and by ``benchmarks/slip_damage.py``
(how much more damage before the first code fails to read: the margin in README).

A :class:`Damage` is a list of steps applied to a page rendered from the PDF:

- ``dpi``: the page as a phone photographs it, in pixels per inch of paper;
- ``thermal``: printed on a 203 dpi thermal printer first (black or white dots), with
  ``spread`` pixels of ink spread around every dot (at 203 dpi, 1 pixel = 0.125 mm);
- ``tilt``: degrees the slip is turned in the picture;
- ``keystone``: the far edge shorter than the near one by this share (camera not square);
- ``blur``: Gaussian blur radius in pixels of the photo (out of focus, shaking hand);
- ``ink``: share of the ink left (faded toner, 0.45 = 45 %), with ``noise`` (standard
  deviation of grain, in grey levels of 255);
- ``jpeg``: JPEG quality the phone saves the picture at.
"""
from __future__ import annotations

import io
import random
from dataclasses import dataclass, replace
from typing import List, Optional, Sequence, Tuple


@dataclass(frozen=True)
class Damage:
    dpi: float = 110
    thermal: bool = False
    spread: int = 0
    tilt: float = 0.0
    keystone: float = 0.0
    blur: float = 0.0
    ink: float = 1.0
    noise: float = 0.0
    jpeg: Optional[int] = None
    seed: int = 2020

    def worse(self, **changes) -> "Damage":
        return replace(self, **changes)


#: A phone at the door: ~110 dpi photo, 12° tilt, keystoned, blurred, 45 % ink with grain,
#: saved as a hard JPEG.
DOOR = Damage(dpi=110, tilt=12, keystone=0.12, blur=0.8, ink=0.45, noise=14, jpeg=20)
#: A 203 dpi thermal label with ink spread, photographed as above.
THERMAL = Damage(dpi=110, thermal=True, spread=1, tilt=12, keystone=0.12, blur=0.8, ink=0.8,
                 noise=10, jpeg=20)


def _perspective(size: Tuple[int, int], keystone: float) -> List[float]:
    """Coefficients for ``Image.transform(PERSPECTIVE)``: the top edge ``keystone`` shorter.

    Pillow maps each pixel of the result back to the source, so the equations
    take the result's corners to the source's."""
    w, h = size
    d = keystone * w / 2
    source = [(0, 0), (w, 0), (w, h), (0, h)]
    result = [(d, 0), (w - d, 0), (w, h), (0, h)]
    rows = []
    for (x, y), (u, v) in zip(result, source):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y, u])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y, v])
    for c in range(8):                  # Gauss-Jordan on the 8 x 9 system
        pivot = max(range(c, 8), key=lambda r: abs(rows[r][c]))
        rows[c], rows[pivot] = rows[pivot], rows[c]
        for r in range(8):
            if r != c:
                f = rows[r][c] / rows[c][c]
                rows[r] = [a - f * b for a, b in zip(rows[r], rows[c])]
    return [rows[i][8] / rows[i][i] for i in range(8)]


def render(pdf_path, dpi: float) -> list:
    """Greyscale images of every page of a PDF at ``dpi``."""
    import pypdfium2

    pdf = pypdfium2.PdfDocument(str(pdf_path))
    try:
        return [page.render(scale=dpi / 72, grayscale=True).to_pil().convert("L") for page in pdf]
    finally:
        pdf.close()


def cut(pages: Sequence, layout, dpi: float) -> list:
    """Each slip of the rendered pages on its own, as cut along the layout's cut lines
    (a phone photographs one slip on a package, not the sheet)."""
    scale = dpi / 72
    out = []
    for page in pages:
        for x, y, w, h in layout.boxes():
            top = layout.page_height - y - h
            out.append(page.crop((round(x * scale), round(top * scale), round((x + w) * scale),
                                  round((top + h) * scale))))
    return out


def _grain(size: Tuple[int, int], sigma: float, seed: int):
    """Grain around 128 with standard deviation ``sigma``: the mean of four seeded uniform
    images (nearly Gaussian; Pillow's own ``effect_noise`` cannot be seeded)."""
    from PIL import Image, ImageChops

    rng = random.Random(seed)
    count = size[0] * size[1]
    u = [Image.frombytes("L", size, rng.randbytes(count)) for _ in range(4)]
    mean = ImageChops.add(ImageChops.add(u[0], u[1], 2.0), ImageChops.add(u[2], u[3], 2.0), 2.0)
    spread = 73.9 / 2          # standard deviation of the mean of four uniform bytes
    return mean.point(lambda p: min(255, max(0, round(128 + (p - 127.5) * sigma / spread))))


def apply(image, damage: Damage, source_dpi: float):
    """``image`` (rendered at ``source_dpi``) after ``damage``."""
    from PIL import Image, ImageChops, ImageFilter

    img = image.convert("L")
    if damage.thermal:
        scale = 203 / source_dpi
        img = img.resize((round(img.width * scale), round(img.height * scale)), Image.LANCZOS)
        img = img.point(lambda p: 0 if p < 128 else 255)      # a dot is printed or not
        if damage.spread:
            img = img.filter(ImageFilter.MinFilter(2 * damage.spread + 1))
        source_dpi = 203
    if damage.ink < 1.0:
        ink = damage.ink
        img = img.point(lambda p: round(255 - ink * (255 - p)))
    scale = damage.dpi / source_dpi
    img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                     Image.LANCZOS)
    if damage.keystone:
        img = img.transform(img.size, Image.PERSPECTIVE, _perspective(img.size, damage.keystone),
                            Image.BICUBIC, fillcolor=255)
    if damage.tilt:
        img = img.rotate(damage.tilt, resample=Image.BICUBIC, expand=True, fillcolor=255)
    if damage.blur:
        img = img.filter(ImageFilter.GaussianBlur(damage.blur))
    if damage.noise:
        img = ImageChops.add(img, _grain(img.size, damage.noise, damage.seed), 1.0, -128)
    if damage.jpeg is not None:
        out = io.BytesIO()
        img.save(out, format="JPEG", quality=damage.jpeg)
        out.seek(0)
        img = Image.open(out).convert("L")
    return img


def decode(image) -> List[str]:
    import zxingcpp

    return [r.text for r in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)]


def read_codes(images: Sequence, damage: Damage, source_dpi: float) -> List[str]:
    """Every QR payload read from the damaged images (slips, or whole pages)."""
    found: List[str] = []
    for image in images:
        found += decode(apply(image, damage, source_dpi))
    return found
