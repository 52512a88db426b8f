"""Reading PDFs the way a person meets them: QR codes decoded from rendered pages,
extracted text, and the fonts each page uses."""
from __future__ import annotations

from pathlib import Path

from conftest import require


def pdfium():
    try:
        import pypdfium2
    except ImportError:
        pypdfium2 = None
    require(pypdfium2 is not None, "pypdfium2 is not installed")
    return pypdfium2


def decoded_pages(path: Path, dpi: int = 200):
    """The QR payloads found on each page (QR Code only: a Micro QR can be
    'found' inside the data of a large one)."""
    try:
        import zxingcpp
    except ImportError:
        zxingcpp = None
    require(zxingcpp is not None, "zxing-cpp is not installed")
    pdf = pdfium().PdfDocument(str(path))
    try:
        return [[r.text for r in zxingcpp.read_barcodes(page.render(scale=dpi / 72).to_pil(),
                                                        formats=zxingcpp.BarcodeFormat.QRCode)]
                for page in pdf]
    finally:
        pdf.close()


def page_texts(path: Path):
    import pypdf

    return [page.extract_text() for page in pypdf.PdfReader(str(path)).pages]


def all_fonts(path: Path):
    """Every font dictionary used by every page, forms included."""
    import pypdf

    def walk(resources, seen):
        resources = resources.get_object()
        for font in resources.get("/Font", {}).values():
            yield font.get_object()
        for xobject in resources.get("/XObject", {}).values():
            xobject = xobject.get_object()
            if xobject.get("/Subtype") == "/Form" and id(xobject) not in seen:
                seen.add(id(xobject))
                yield from walk(xobject.get("/Resources", {}), seen)

    for page in pypdf.PdfReader(str(path)).pages:
        yield from walk(page["/Resources"], set())


def is_embedded(font) -> bool:
    if font.get("/Subtype") == "/Type0":
        desc = font["/DescendantFonts"][0].get_object().get("/FontDescriptor")
    else:
        desc = font.get("/FontDescriptor")
    if desc is None:
        return False
    desc = desc.get_object()
    return any(key in desc for key in ("/FontFile", "/FontFile2", "/FontFile3"))
