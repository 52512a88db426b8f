"""Slips and run sheets, checked by content: QR codes decoded from rendered pages,
fonts embedded, text extracted, text boxes inside the slips."""
from __future__ import annotations

import collections
import datetime as dt
import os
import re
from pathlib import Path

import pytest
from conftest import require
from pdftools import all_fonts, decoded_pages, is_embedded, page_texts, pdfium
from reportlab.lib.units import mm

from letterpress.errors import ConfigError, LetterpressError
from letterpress.ledger import codes
from letterpress.models import BatchInfo, Household, Recipient, Volunteer
from letterpress.slips import fonts, layouts, pdfcanvas, slips

BASE = "http://192.168.1.20:8470"
NAMES = ("吴秀兰", "朱建国", "苏文明", "李桂兰", "田凤英", "任文明", "赵金凤", "曾学军", "宋桂兰",
         "宋淑英", "徐学军", "谢秀兰", "王玉珍", "张志强", "刘德华", "陈春梅", "杨国庆", "黄素芬",
         "周永福", "孙桂芳")
VOLUNTEERS = ("李明", "陈晓", "王磊", "赵静")
CATEGORIES = ("重症老人", "独居老人", "空巢老人", "困难老人", "残障家庭")
LONG_ADDRESS = "沙湖小区8栋4单元502室（从东门进来，左手边第二个楼道，楼下有一个小卖部）" * 4
LONG_NOTES = "老人独居，听力不好，敲门后请耐心等待至少两分钟；如无人应答请联系女儿 139 0000 1111。" * 4
LONG_NAME = "欧阳" + "慕容" * 15
STANDARD_14 = {"Helvetica", "Courier", "Times-Roman", "Symbol", "ZapfDingbats"}

INFO_ZH = BatchInfo(title="2020-02-24 青鱼嘴社区 慰问物资", org="青鱼嘴社区志愿服务队",
                    date=dt.date(2020, 2, 24), lang="zh")
INFO_EN = BatchInfo(title="2020-02-24 Qingyuzui food packages", org="Qingyuzui volunteers",
                    date=dt.date(2020, 2, 24), lang="en")


def make_households(n: int = 20):
    out = []
    for i in range(n):
        seq = i + 1
        address = f"沙湖小区{i % 9 + 1}栋{i % 4 + 1}单元{i % 7 + 1}0{i % 4 + 1}室"
        notes = "腿脚不便，请送到门口" if seq % 3 == 0 else ""
        name = NAMES[i % len(NAMES)]
        if seq == 13:
            address, notes = LONG_ADDRESS, LONG_NOTES
        if seq == 17:
            name = LONG_NAME
        recipient = Recipient(
            row=seq + 1, id=str(seq), name=name, honorific="奶奶" if seq % 2 else "爷爷",
            address=address, phone=f"1390000{seq:04d}", category=CATEGORIES[i % 5],
            volunteer=VOLUNTEERS[i * len(VOLUNTEERS) // n], notes=notes)
        code = codes.new_code()
        out.append(Household(seq=seq, recipient=recipient, code=code,
                             url=codes.url_for(BASE, code)))
    return out


@pytest.fixture(scope="module")
def cjk():
    choice = fonts.find_font(None)
    require(choice.embedded, "no CJK TrueType font: install fonts-wqy-microhei")
    return choice


@pytest.fixture(scope="module")
def households():
    return make_households()


def write(tmp_path, households, cjk, layout="a4-8", info=INFO_ZH, **kw):
    path = tmp_path / f"slips-{layout}-{info.lang}.pdf"
    pages = slips.write_slips(households, path, info=info, total=len(households), layout=layout,
                              fonts=kw.pop("fonts", cjk), package="肉制品、蔬菜", **kw)
    return path, pages


@pytest.mark.parametrize("layout", sorted(layouts.LAYOUTS))
def test_every_qr_decodes_to_its_household_exactly_once(tmp_path, households, cjk, layout):
    path, pages = write(tmp_path, households, cjk, layout)
    per_page = layouts.LAYOUTS[layout].per_page
    assert pages == -(-len(households) // per_page)
    found = [url for page in decoded_pages(path) for url in page]
    assert collections.Counter(found) == collections.Counter(h.url for h in households)


@pytest.mark.parametrize("layout", sorted(layouts.LAYOUTS))
def test_every_font_is_embedded(tmp_path, households, cjk, layout):
    path, _ = write(tmp_path, households, cjk, layout)
    used = list(all_fonts(path))
    assert used
    for font in used:
        base = str(font.get("/BaseFont", "")).lstrip("/")
        assert base not in STANDARD_14, base
        assert is_embedded(font), base


def test_text_is_extractable_and_right(tmp_path, households, cjk):
    path, _ = write(tmp_path, households, cjk)
    text = "\n".join(page_texts(path))
    for h in households:
        assert h.code in text
        assert (h.name in text) == (h.name != LONG_NAME)      # a name too long is cut with …
        assert f"第 {h.seq} 户 / 共 20 户" in text
        assert f"志愿者：{h.volunteer}" in text
    assert "签收人" in text and "时间" in text
    assert INFO_ZH.title in text and "肉制品、蔬菜" in text
    assert "\u2026" in text                      # the long address was cut, not overflowed
    assert re.search(r"欧阳(慕容)+\u2026 奶奶", text)       # the long name too


def test_english_labels(tmp_path, households, cjk):
    path, _ = write(tmp_path, households[:8], cjk, info=INFO_EN)
    text = page_texts(path)[0]
    for h in households[:8]:
        assert f"No. {h.seq} / 8" in text
    for word in ("Received by", "Time", "Package:", "Volunteer:"):
        assert word in text
    assert "签收人" not in text


def test_category_and_phone_only_when_asked(tmp_path, households, cjk):
    path, _ = write(tmp_path, households, cjk)
    text = "\n".join(page_texts(path))
    assert not any(c in text for c in CATEGORIES)
    assert not any(h.recipient.phone in text for h in households)
    path, _ = write(tmp_path, households, cjk, slip_fields=("category", "phone"))
    text = "\n".join(page_texts(path))
    assert all(h.recipient.category in text for h in households)
    assert all(h.recipient.phone in text for h in households if h.seq != 13)
    with pytest.raises(ConfigError) as info:
        write(tmp_path, households, cjk, slip_fields=("address-of-doctor",))
    assert info.value.code == "bad_slip_field"


def test_label_page_is_100_by_150_mm_portrait(tmp_path, households, cjk):
    import pypdf

    path, pages = write(tmp_path, households, cjk, "label-100x150")
    reader = pypdf.PdfReader(str(path))
    assert pages == len(reader.pages) == 20
    for page in reader.pages:
        assert float(page.mediabox.width) == pytest.approx(100 * mm, abs=0.01)
        assert float(page.mediabox.height) == pytest.approx(150 * mm, abs=0.01)


@pytest.mark.parametrize("layout", sorted(layouts.LAYOUTS))
def test_long_text_stays_inside_its_slip(tmp_path, households, cjk, layout):
    """Every character box lies inside one slip, clear of the cut by 1 mm."""
    spec = layouts.LAYOUTS[layout]
    path, _ = write(tmp_path, households, cjk, layout)
    inset, tol = 1 * mm, 0.3
    boxes = [(x + inset, y + inset, x + w - inset, y + h - inset) for x, y, w, h in spec.boxes()]
    pdf = pdfium().PdfDocument(str(path))
    checked = 0
    try:
        for page in pdf:
            textpage = page.get_textpage()
            for i in range(textpage.count_chars()):
                if textpage.get_text_range(i, 1).strip() == "":
                    continue
                left, bottom, right, top = textpage.get_charbox(i)
                assert any(left >= b[0] - tol and bottom >= b[1] - tol and right <= b[2] + tol
                           and top <= b[3] + tol for b in boxes), \
                    (textpage.get_text_range(i, 1), (left, bottom, right, top))
                checked += 1
    finally:
        pdf.close()
    assert checked > 500


def test_new_sheet_per_volunteer(tmp_path, households, cjk):
    _path, pages = write(tmp_path, households, cjk)
    assert pages == 3
    path, pages = write(tmp_path, households, cjk, new_sheet_per_volunteer=True)
    assert pages == 4                                 # 5 slips each, one sheet each
    by_url = {h.url: h.volunteer for h in households}
    for number, urls in enumerate(decoded_pages(path)):
        assert {by_url[u] for u in urls} == {VOLUNTEERS[number]}


def test_progress_and_streaming_input(tmp_path, households, cjk):
    calls = []
    pages = slips.write_slips(iter(households), tmp_path / "s.pdf", info=INFO_ZH, total=20,
                              fonts=cjk, progress=lambda *a: calls.append(a))
    assert pages == 3 and calls[-1] == ("slips", 20, 20)


def test_households_without_codes_are_refused(tmp_path, households, cjk):
    unregistered = [Household(seq=1, recipient=households[0].recipient)]
    with pytest.raises(LetterpressError) as info:
        slips.write_slips(unregistered, tmp_path / "s.pdf", info=INFO_ZH, total=1, fonts=cjk)
    assert info.value.code == "no_code" and info.value.where.row == 2
    assert not (tmp_path / "s.pdf").exists()


def test_a_failed_write_leaves_no_file(tmp_path, households, cjk):
    def broken():
        yield from households[:5]
        raise RuntimeError("list went away")

    target = tmp_path / "out" / "slips.pdf"
    with pytest.raises(RuntimeError):
        slips.write_slips(broken(), target, info=INFO_ZH, total=20, fonts=cjk)
    assert not target.exists() and os.listdir(target.parent) == []
    with pytest.raises(ConfigError) as info:
        slips.write_slips(households, target, info=INFO_ZH, total=20, fonts=cjk, layout="a5")
    assert info.value.code == "bad_layout"
    assert not target.exists()


def test_fallback_font_still_embeds_latin_text(tmp_path, households):
    path, _ = write(tmp_path, households[:8], None, fonts=fonts.fallback_font())
    unembedded = {str(f.get("/BaseFont")).lstrip("/") for f in all_fonts(path)
                  if not is_embedded(f)}
    assert unembedded == {fonts.CID_FALLBACK}
    assert not {str(f.get("/BaseFont")).lstrip("/") for f in all_fonts(path)} & STANDARD_14
    text = "\n".join(page_texts(path))
    assert all(h.code in text for h in households[:8])
    found = [url for page in decoded_pages(path) for url in page]
    assert sorted(found) == sorted(h.url for h in households[:8])


# Run sheets


def volunteer(name="李明"):
    return Volunteer(index=1, name=name, token="Zq8_xY-3kLmN0pQrStUvWx",
                     url=codes.badge_url(BASE, "Zq8_xY-3kLmN0pQrStUvWx"))


def test_runsheet_has_badge_full_phones_and_categories(tmp_path, households, cjk):
    mine = [h for h in households if h.volunteer == "李明"]
    path = tmp_path / "runsheets" / "01-李明.pdf"
    pages = slips.write_runsheet(volunteer(), mine, path, info=INFO_ZH, total=20, fonts=cjk,
                                 lang="zh")
    assert pages == 1
    assert decoded_pages(path) == [[volunteer().url]]
    text = page_texts(path)[0]
    assert "李明" in text and "用手机扫码登录" in text and "第 1 / 1 页" in text
    for h in mine:
        assert h.recipient.phone in text and h.recipient.category in text
        assert h.name in text
    assert all(is_embedded(f) for f in all_fonts(path))


def test_runsheet_repeats_its_header_and_numbers_pages(tmp_path, cjk):
    many = [h for h in make_households(160) if h.volunteer == "李明"]
    assert len(many) == 40
    path = tmp_path / "long.pdf"
    pages = slips.write_runsheet(volunteer(), many, path, info=INFO_EN, total=160, fonts=cjk,
                                 lang="en")
    assert pages >= 2
    texts = page_texts(path)
    for number, text in enumerate(texts, start=1):
        assert "Address" in text and "Phone" in text and "Category" in text
        assert f"page {number} of {pages}" in text
    joined = "\n".join(texts)
    assert all(h.recipient.phone in joined for h in many)
    order = [joined.index(h.recipient.phone) for h in many]
    assert order == sorted(order)                      # delivery order kept


def test_unassigned_runsheet_has_no_badge(tmp_path, households, cjk):
    path = tmp_path / "unassigned.pdf"
    slips.write_runsheet(Volunteer(index=5, name=""), households[:3], path, info=INFO_ZH,
                         total=20, fonts=cjk, lang="zh")
    assert decoded_pages(path) == [[]]
    assert "未分配" in page_texts(path)[0]


# Fonts


def test_font_search_and_coverage(cjk):
    assert cjk.path is not None and cjk.path.is_file() and cjk.name
    assert fonts.missing_glyphs("吴秀兰 奶奶 No. 12 / 40", cjk) == set()
    assert fonts.missing_glyphs("王\ue000英", cjk) == {"\ue000"}


def test_explicit_font_problems_have_codes(tmp_path):
    with pytest.raises(fonts.FontError) as info:
        fonts.find_font(tmp_path / "nope.ttf")
    assert info.value.code == "font_missing"
    cff = tmp_path / "NotoSansCJKsc-Regular.otf"
    cff.write_bytes(b"OTTO" + bytes(300))
    with pytest.raises(fonts.FontError) as info:
        fonts.find_font(cff)
    assert info.value.code == "font_cff" and "fonts-wqy-microhei" in info.value.hint
    latin_only = fonts.find_font(Path(fonts._reportlab_font("Vera.ttf")))
    assert latin_only.embedded and "Chinese" in latin_only.warning


def test_fallback_choice_warns():
    choice = fonts.fallback_font()
    assert not choice.embedded and choice.path is None
    assert "not embedded" in choice.warning and "fonts-wqy-microhei" in choice.warning


def test_search_falls_back_to_the_builtin_font_when_nothing_is_found(monkeypatch):
    for name in ("_candidates", "_fc_list", "_globbed"):
        monkeypatch.setattr(fonts, name, lambda: [])
    fonts._search.cache_clear()
    try:
        choice = fonts.find_font(None)
        assert choice == fonts.fallback_font()
    finally:
        fonts._search.cache_clear()


def test_reportlab_uses_its_c_accelerator():
    """rl-accel (a dependency) formats the PDF's numbers in C: same bytes, a fraction of the time."""
    import _rl_accel
    from reportlab.lib import rl_accel

    assert rl_accel.fp_str is _rl_accel.fp_str


@pytest.mark.parametrize("layout", ["a4-8", "label-100x150"])
def test_pages_compressed_as_they_end_give_the_same_file(tmp_path, cjk, layout, monkeypatch):
    """Slips and run sheets hold each finished page compressed, not as text: the file is
    byte for byte the one reportlab's own canvas writes (in its invariant mode)."""
    from reportlab import rl_config
    from reportlab.pdfgen.canvas import Canvas

    monkeypatch.setattr(rl_config, "invariant", 1)
    many = make_households(60)
    (tmp_path / "compact").mkdir()
    (tmp_path / "plain").mkdir()
    compact_path, _ = write(tmp_path / "compact", many, cjk, layout=layout)
    slips.write_runsheet(volunteer(), many, tmp_path / "compact-sheet.pdf", info=INFO_ZH,
                         total=len(many), fonts=cjk, lang="zh")
    monkeypatch.setattr(pdfcanvas, "CompactCanvas", Canvas)
    plain_path, _ = write(tmp_path / "plain", many, cjk, layout=layout)
    slips.write_runsheet(volunteer(), many, tmp_path / "plain-sheet.pdf", info=INFO_ZH,
                         total=len(many), fonts=cjk, lang="zh")
    compact, plain = compact_path.read_bytes(), plain_path.read_bytes()
    assert len(decoded_pages(compact_path)) > 1
    assert compact == plain
    assert (tmp_path / "compact-sheet.pdf").read_bytes() == (tmp_path / "plain-sheet.pdf").read_bytes()


def test_a_finished_page_keeps_only_its_compressed_stream(tmp_path):
    with pdfcanvas.binary_streams():
        canvas = pdfcanvas.CompactCanvas(str(tmp_path / "x.pdf"), pageCompression=1)
        for text in ("held compressed", "and again"):
            canvas.drawString(10, 10, text)
            canvas.showPage()
            assert canvas.last_stream().startswith(b"x\x9c")
        first, second = canvas._doc.Pages.pages
        assert isinstance(second, pdfcanvas.FinishedPage)
        assert first.prototype is second.prototype      # pages drawn alike share one
        assert isinstance(second.contents, pdfcanvas.SpooledStream)     # in the spool file,
        assert not any(isinstance(v, bytes) for v in vars(second.contents).values())  # not here
        canvas.save()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.pdf"]  # the spool had no name
    assert b"held compressed" not in (tmp_path / "x.pdf").read_bytes()
    from pypdf import PdfReader

    pages = PdfReader(tmp_path / "x.pdf").pages
    assert [p.extract_text().strip() for p in pages] == ["held compressed", "and again"]


def test_finished_pages_hold_a_few_hundred_bytes_each(tmp_path):
    """A district's 12,500 slip pages are not held as reportlab's page objects
    (about 4.5 KB each) until the file is written."""
    import tracemalloc

    def held_per_page(make) -> float:
        with pdfcanvas.binary_streams():
            canvas = make(str(tmp_path / "m.pdf"), pageCompression=1)
            for n in range(50):
                canvas.drawString(10, 10, f"page {n}")
                canvas.showPage()
            tracemalloc.start()
            try:
                before = tracemalloc.get_traced_memory()[0]
                for n in range(2000):
                    canvas.drawString(10, 10, f"page {n}")
                    canvas.showPage()
                held = tracemalloc.get_traced_memory()[0] - before
            finally:
                tracemalloc.stop()
            canvas.save()
        return held / 2000

    from reportlab.pdfgen.canvas import Canvas

    ours, theirs = held_per_page(pdfcanvas.CompactCanvas), held_per_page(Canvas)
    assert ours < 600 and theirs > 4 * ours, (ours, theirs)


def test_pages_of_their_own_are_kept_whole_and_the_file_is_the_same(tmp_path, monkeypatch):
    """A page with a link, or another size, is not made from the others' prototype."""
    from reportlab import rl_config
    from reportlab.pdfgen.canvas import Canvas

    monkeypatch.setattr(rl_config, "invariant", 1)

    def draw(make, path):
        with pdfcanvas.binary_streams():
            canvas = make(str(path), pageCompression=1)
            canvas.drawString(10, 10, "plain")
            canvas.showPage()
            canvas.drawString(10, 10, "linked")
            canvas.linkURL("https://example.org/", (0, 0, 100, 30))
            canvas.showPage()
            canvas.setPageSize((300, 300))
            canvas.drawString(10, 10, "small")
            canvas.showPage()
            canvas.drawString(10, 10, "small again")
            canvas.showPage()
            canvas.save()
        return path.read_bytes()

    assert draw(pdfcanvas.CompactCanvas, tmp_path / "a.pdf") == draw(Canvas, tmp_path / "b.pdf")
    from pypdf import PdfReader

    pages = PdfReader(tmp_path / "a.pdf").pages
    assert [p.mediabox.width for p in pages] == [595.2756, 595.2756, 300, 300]
    assert "/Annots" in pages[1] and "/Annots" not in pages[0]


def test_the_pdf_is_written_as_it_is_formatted(tmp_path, monkeypatch):
    """No joined copy of the whole file in memory: reportlab's collector gets nothing."""
    from reportlab.pdfbase import pdfdoc

    joined = []
    monkeypatch.setattr(pdfdoc.PDFFile, "format",
                        lambda self, doc: joined.append(b"".join(self.strings)) or joined[-1])
    with pdfcanvas.binary_streams():
        canvas = pdfcanvas.CompactCanvas(str(tmp_path / "x.pdf"), pageCompression=1)
        for n in range(3):
            canvas.drawString(10, 10, f"page {n}")
            canvas.showPage()
        canvas.save()
    assert joined == [b""]
    assert (tmp_path / "x.pdf").read_bytes().startswith(b"%PDF-")
    assert (tmp_path / "x.pdf").read_bytes().rstrip().endswith(b"%%EOF")
