"""QR matrices, vector drawing, PNG and terminal output; each decoded back with zxing-cpp."""
from __future__ import annotations

import io
import re

import pytest
import qrcode
from conftest import require
from qrcode.constants import ERROR_CORRECT_H, ERROR_CORRECT_M, ERROR_CORRECT_Q
from qrcode.util import MODE_ALPHA_NUM, QRData
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas

from letterpress.ledger import codes
from letterpress.slips import qr

BASE = "http://192.168.100.200:8470/lp"       # 30 characters: version 3
URL = codes.url_for(BASE, "K7Q2M-9XD3T-" + codes.check_symbol("K7Q2M9XD3T"))
BADGE = codes.badge_url("http://192.168.1.20:8470", "Zq8_xY-3kLmN0pQrStUvWx")


def decode(image) -> list:
    try:
        import zxingcpp
    except ImportError:
        zxingcpp = None
    require(zxingcpp is not None, "zxing-cpp is not installed (pip install zxing-cpp)")
    results = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    return [r.text for r in results]


def render_pdf(data: bytes, dpi: int = 200):
    try:
        import pypdfium2 as pdfium
    except ImportError:
        pdfium = None
    require(pdfium is not None, "pypdfium2 is not installed (pip install pypdfium2)")
    pdf = pdfium.PdfDocument(data)
    return [page.render(scale=dpi / 72).to_pil() for page in pdf]


def test_matrix_uses_a_fixed_version_and_mask_in_alphanumeric_mode(monkeypatch):
    assert len(BASE) == 30
    mat = qr.matrix(URL)
    assert len(mat) == 29 and all(len(row) == 29 for row in mat)
    reference = qrcode.QRCode(version=3, error_correction=ERROR_CORRECT_Q, border=0,
                              mask_pattern=qr.MASK_PATTERN)
    reference.add_data(QRData(URL, mode=MODE_ALPHA_NUM))
    reference.make(fit=False)
    assert [[bool(m) for m in row] for row in mat] == \
        [[bool(m) for m in row] for row in reference.modules]

    def no_search(self, *args, **kwargs):
        raise AssertionError("no mask search or version fit per code")

    qr.matrix(URL)  # the version for this length is cached now
    monkeypatch.setattr(qrcode.QRCode, "best_mask_pattern", no_search)
    monkeypatch.setattr(qrcode.QRCode, "best_fit", no_search)
    for _ in range(5):
        qr.matrix(codes.url_for(BASE, codes.new_code()))


def _qrcode_modules(payload: str, mask: int = qr.MASK_PATTERN) -> list:
    """The symbol as the ``qrcode`` package makes it (version fitted, mask given)."""
    mode = qr.mode_for(payload)
    data = payload if mode == MODE_ALPHA_NUM else payload.encode("utf-8")
    reference = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=0, mask_pattern=mask)
    reference.add_data(QRData(data, mode=mode))
    reference.make(fit=True)
    return [bytes(bool(m) for m in row) for row in reference.modules]


@pytest.mark.parametrize("mask", [qr.MASK_PATTERN, 0, 6])
def test_fast_encoder_gives_qrcodes_symbols_module_for_module(mask):
    import random

    from letterpress.slips import qrencode

    rnd = random.Random(mask)
    payloads = [codes.url_for(BASE, codes.new_code()) for _ in range(20)] + [BADGE, "A", "é"]
    for length in (1, 2, 7, 20, 47, 48, 90, 150, 260):     # versions 1 to 10 and more
        payloads.append("".join(rnd.choice("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")
                                for _ in range(length)))
        payloads.append("".join(rnd.choice("abcXYZ09?=&é/_") for _ in range(length)))
    for payload in payloads:
        mode = qr.mode_for(payload)
        data = payload if mode == MODE_ALPHA_NUM else payload.encode("utf-8")
        version = qr.version_for(len(data), mode)
        assert qrencode.matrix(data, mode, version, ERROR_CORRECT_M, mask) == \
            _qrcode_modules(payload, mask), payload
    assert decode(_png_image(payloads[0])) == [payloads[0]]


def test_badge_payload_keeps_its_case_in_byte_mode():
    assert qr.mode_for(BADGE) != MODE_ALPHA_NUM
    assert decode(_png_image(BADGE)) == [BADGE]


def test_runs_merge_neighbouring_dark_modules():
    mat = [bytes([1, 1, 0, 1, 0, 0, 1, 1, 1])]
    assert qr.runs(mat) == [(0, 0, 2), (0, 3, 1), (0, 6, 3)]
    assert qr.runs([[True, False, True]]) == [(0, 0, 1), (0, 2, 1)]


def test_draw_makes_one_vector_path_that_decodes():
    buf = io.BytesIO()
    canvas = Canvas(buf, pagesize=(60 * mm, 60 * mm), pageCompression=0)
    mat = qr.matrix(URL)
    module = qr.draw(canvas, 10 * mm, 10 * mm, 37 * 1.0 * mm, mat)
    canvas.showPage()
    canvas.save()
    assert abs(module - 1.0 * mm) < 1e-9
    content = buf.getvalue().decode("latin-1")
    rects = re.findall(r"^\d+ \d+ \d+ 1 re$", content, flags=re.M)
    assert len(rects) == len(qr.runs(mat))
    assert len(rects) < sum(sum(row) for row in mat)        # runs were merged
    assert len(re.findall(r"^f$", content, flags=re.M)) == 1   # one fill: one path
    assert "/XObject" not in content and " Do" not in content   # no image
    assert decode(render_pdf(buf.getvalue())[0]) == [URL]


def test_decoder_sees_version_3_level_q_and_the_fixed_mask():
    import zxingcpp

    results = zxingcpp.read_barcodes(_png_image(URL), formats=zxingcpp.BarcodeFormat.QRCode)
    assert [r.text for r in results] == [URL]
    extra = getattr(results[0], "extra", None)
    require(isinstance(extra, dict) and "Version" in extra, "zxing-cpp 2.3+ reports symbol details")
    assert (extra["Version"], extra["ECLevel"]) == ("3", "Q")
    assert extra["DataMask"] == qr.MASK_PATTERN


@pytest.mark.parametrize("base, level, version", [
    ("https://lp.qingyuzui-wuhan.org", ERROR_CORRECT_Q, 3),   # 30 characters, https
    ("http://192.168.1.20:8470", ERROR_CORRECT_Q, 3),         # 24
    ("http://10.0.0.5:8470", ERROR_CORRECT_H, 3),             # 20
    ("https://deliveries.qingyuzui-community.org", ERROR_CORRECT_M, 3),   # 42: M fits v3
    ("https://deliveries.qingyuzui-community-volunteers.org", ERROR_CORRECT_Q, 4),  # M: v4
])
def test_strongest_error_correction_that_stays_within_version_3(base, level, version):
    url = codes.url_for(base, codes.new_code())
    assert qr.level_for(len(url), qr.mode_for(url)) == (level, version)
    assert len(qr.matrix(url)) == 17 + 4 * version
    assert decode(_png_image(url)) == [url]


def test_modules_below_half_a_millimetre_are_refused():
    canvas = Canvas(io.BytesIO())
    with pytest.raises(qr.QRError) as info:
        qr.draw(canvas, 0, 0, 37 * 0.45 * mm, qr.matrix(URL))
    assert info.value.code == "qr_too_small"
    qr.draw(canvas, 0, 0, 37 * 0.5 * mm, qr.matrix(URL))


def _png_image(payload: str, width: int = 400):
    from PIL import Image

    return Image.open(io.BytesIO(qr.png(payload, width)))


def test_png_is_one_bit_whole_pixels_with_quiet_zone_and_decodes():
    image = _png_image(URL, 400)
    assert image.mode == "1"
    assert image.size[0] == image.size[1] and image.size[0] % 37 == 0
    assert image.size[0] <= 400
    scale = image.size[0] // 37
    # The quiet zone (4 modules) is light all round.
    for i in range(image.size[0]):
        for j in range(4 * scale):
            assert image.getpixel((i, j)) and image.getpixel((j, i))
    assert decode(image) == [URL]


def test_terminal_rendering_is_a_readable_qr():
    from PIL import Image

    text = qr.terminal(URL)
    lines = text.split("\n")
    assert len(lines) == (37 + 1) // 2 and all(len(line) == 37 for line in lines)
    # Rebuild the modules from the half blocks (light modules are painted) and decode.
    image = Image.new("L", (37, 38), 0)
    halves = {"\u2588": (1, 1), "\u2580": (1, 0), "\u2584": (0, 1), " ": (0, 0)}
    for r, line in enumerate(lines):
        for c, ch in enumerate(line):
            top, bottom = halves[ch]
            image.putpixel((c, 2 * r), 255 * top)
            image.putpixel((c, 2 * r + 1), 255 * bottom)
    image = image.crop((0, 0, 37, 37)).resize((370, 370), Image.NEAREST)
    assert decode(image) == [URL]
    assert qr.terminal(URL, invert=True) != text


def test_long_payload_is_refused_with_a_hint():
    with pytest.raises(qr.QRError) as info:
        qr.matrix("HTTP://" + "A" * 5000)
    assert info.value.code == "qr_too_long"

