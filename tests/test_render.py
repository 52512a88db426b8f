"""The fast renderer against docxtpl itself: same text everywhere, valid zips, merged letters."""
from __future__ import annotations

import io
import os
import pickle
import re
import struct
import subprocess
import sys
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import pytest
from conftest import FIXTURES, require_program
from docx import Document
from docx.enum.section import WD_SECTION
from docx.shared import Mm
from docxtpl import DocxTemplate, InlineImage, RichText
from jinja2 import Environment, StrictUndefined
from lxml import etree
from PIL import Image

from letterpress.docx.template import CompiledTemplate, MergedDocument, RenderedLetter
from letterpress.errors import InputError, TemplateProblemError

PICTURE_RE = re.compile(r'r:embed="([^"]+)"')


@pytest.fixture(autouse=True)
def _fast_path_only(monkeypatch):
    """A template the fast path fails to read is a bug here, not a reason to use docxtpl."""
    monkeypatch.setattr("letterpress.docx.template.FALLBACK_ON_ERROR", False)


# ---------------------------------------------------------------------------
# Templates, built with python-docx


def _split_run_paragraph(doc, *pieces):
    """A paragraph whose text is cut into runs with different formatting, as Word does."""
    p = doc.add_paragraph()
    for i, piece in enumerate(pieces):
        run = p.add_run(piece)
        run.bold = bool(i % 2)
    return p


def build_letter_template(path: Path) -> Path:
    """A one-to-two page letter using most of what docxtpl offers."""
    doc = Document()
    section = doc.sections[0]
    section.header.paragraphs[0].text = "{{ org }} · 第{{ seq }}号 / 共{{ total }}份"
    section.header.add_paragraph("{% if category %}类别:{{ category }}{% endif %}")
    section.footer.paragraphs[0].text = "{{ batch }}:致{{ name }}"
    doc.add_heading("爱不隔离 抗疫必胜", 1)
    _split_run_paragraph(doc, "尊敬的{{ na", "me }}", "{{ honorific }}:")
    doc.add_paragraph("您的地址:{{ address }}。备注:{{ notes }}")
    for _ in range(6):
        doc.add_paragraph("省直机关全体党员干部始终牵挂着社区的每一位居民,与一线的社区工作者"
                          "并肩作战,努力帮助大家解决生活中的困难,守护大家的身体健康。" * 2)
    doc.add_paragraph("{%p if ill %}")
    doc.add_paragraph("我们为{{ name }}特别准备了常用药品,请按说明服用。")
    doc.add_paragraph("{%p endif %}")
    doc.add_paragraph("本次送达的物资:")
    doc.add_paragraph("{%p for item in items %}")
    doc.add_paragraph("{{ loop.index }}. {{ item }}", style="List Bullet")
    doc.add_paragraph("{%p endfor %}")
    table = doc.add_table(rows=4, cols=3)
    table.style = "Table Grid"
    for cell, text in zip(table.rows[0].cells, ("物资", "数量", "备注")):
        cell.text = text
    table.cell(1, 0).text = "{%tr for row in rows %}"
    data_row = ("{{ row.what }}", "{{ row.count }}", "{{ row.note }}")
    for cell, text in zip(table.rows[2].cells, data_row):
        cell.text = text
    table.cell(3, 0).text = "{%tr endfor %}"
    doc.add_paragraph("联系人:{{r contact }}")
    doc.add_paragraph("您的照片:{{ photo }}")
    doc.add_paragraph("志愿者:{{ volunteer }}    日期:{{ date }}")
    doc.core_properties.title = "致{{ name }}的信"
    doc.core_properties.subject = "{{ batch }}"
    doc.save(path)
    return path


def build_cell_loop_template(path: Path) -> Path:
    """Columns made by a {%tc for %} loop: docxtpl must fix the table grid."""
    doc = Document()
    doc.add_paragraph("{{ name }} 的领取记录")
    table = doc.add_table(rows=2, cols=4)
    for row, label, value in ((0, "日期", "{{ d }}"), (1, "签名", "{{ name }}")):
        for col, text in enumerate((label, "{%tc for d in days %}", value, "{%tc endfor %}")):
            table.cell(row, col).text = text
    doc.add_paragraph("谢谢!")
    doc.save(path)
    return path


def make_png(path: Path, size=(40, 20), colour=(200, 30, 30)) -> Path:
    Image.new("RGB", size, colour).save(path, dpi=(96, 96))
    return path


def letter_context(tpl, n: int, png: Path) -> dict:
    """Household ``n``: awkward values on purpose (escaping, newlines, tags, Chinese)."""
    names = ["王秀英", "Li & <Ming>", "张{{ x }}芳", "赵\t建国", "Ana O'Neil \"A\""]
    rich = RichText("社区热线 ", bold=True)
    link = tpl.build_url_id("https://example.org/?a=1&b=2")
    rich.add("027-8765 4321", color="#C00000", url_id=link)
    return {
        "org": "省直机关 & 青鱼嘴社区", "seq": n, "total": 5, "batch": "2020-02-24 食品包",
        "name": names[n % len(names)], "honorific": "奶奶" if n % 2 else "先生",
        "address": f"沙湖小区{n}栋2单元401", "notes": "行动不便\n请敲门两次" if n % 2 else "",
        "category": "重症老人" if n % 3 == 0 else "", "ill": n % 3 == 0,
        "items": ["肉制品", "蔬菜 <新鲜>", "口罩 & 手套"][: 1 + n % 3],
        "rows": [{"what": "蔬菜", "count": n, "note": "a&b"},
                 {"what": "肉", "count": 2, "note": "<1kg>"}],
        "contact": rich,
        "photo": InlineImage(tpl, str(png), width=Mm(25)),
        "volunteer": "志愿者{{ 1 }}" if n == 4 else "陈小兵", "date": "2020年2月24日",
    }


# ---------------------------------------------------------------------------
# Reading documents back


def document_text(data: bytes) -> dict:
    """Every paragraph, table cell, header and footer text python-docx sees."""
    doc = Document(io.BytesIO(data))
    return {
        "paragraphs": [p.text for p in doc.paragraphs],
        "tables": [[[c.text for c in row.cells] for row in t.rows] for t in doc.tables],
        "headers": [[p.text for p in s.header.paragraphs] for s in doc.sections],
        "footers": [[p.text for p in s.footer.paragraphs] for s in doc.sections],
        "pictures": len(doc.inline_shapes),
        "title": doc.core_properties.title,
    }


def docxtpl_bytes(path: Path, make_context) -> bytes:
    """The reference: a fresh DocxTemplate per letter, with our Jinja settings."""
    reference = DocxTemplate(str(path))
    reference.render(make_context(reference),
                     jinja_env=Environment(autoescape=True, undefined=StrictUndefined))
    out = io.BytesIO()
    reference.save(out)
    return out.getvalue()


R_NS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"


def canonical_xml(data: bytes, name: str = "word/document.xml") -> bytes:
    """A part's XML in canonical form, relationship ids blanked (theirs and ours differ)."""
    root = etree.fromstring(zipfile.ZipFile(io.BytesIO(data)).read(name))
    for element in root.iter():
        for key in [k for k in element.attrib if k.startswith(R_NS)]:
            element.attrib[key] = "rId"
    return etree.tostring(root[0] if name.endswith("document.xml") else root, method="c14n")


def assert_same_xml(ours: bytes, theirs: bytes) -> None:
    """The body, headers and footers are the same XML as docxtpl's, not only the same text."""
    names = [n for n in zipfile.ZipFile(io.BytesIO(theirs)).namelist()
             if re.fullmatch(r"word/(document|header\d+|footer\d+)\.xml", n)]
    for name in names:
        assert canonical_xml(ours, name) == canonical_xml(theirs, name), name


def assert_valid_docx(data: bytes) -> zipfile.ZipFile:
    zf = zipfile.ZipFile(io.BytesIO(data))
    assert zf.testzip() is None
    names = zf.namelist()
    assert len(names) == len(set(names)), "duplicate zip members"
    for info in zf.infolist():
        if info.filename.endswith((".xml", ".rels")):
            etree.fromstring(zf.read(info))  # well-formed
        assert info.compress_type in (zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED), info.filename
        if info.compress_type == zipfile.ZIP_DEFLATED:   # a complete deflate stream, nothing after
            at = info.header_offset
            name_len, extra_len = struct.unpack("<HH", data[at + 26:at + 30])
            start = at + 30 + name_len + extra_len
            inflate = zlib.decompressobj(-15)
            inflate.decompress(data[start:start + info.compress_size])
            assert inflate.eof and not inflate.unused_data, info.filename
    return zf


def _without_title(text: dict) -> dict:
    return {k: v for k, v in text.items() if k != "title"}


# ---------------------------------------------------------------------------
# Same output as docxtpl


@pytest.fixture
def letter_template(tmp_path):
    return build_letter_template(tmp_path / "letter.docx")


@pytest.fixture
def png(tmp_path):
    return make_png(tmp_path / "photo.png")


@pytest.mark.parametrize("n", range(5))
def test_letter_text_equals_docxtpl(letter_template, png, n):
    tpl = CompiledTemplate(letter_template)
    ours = tpl.render_bytes(letter_context(tpl, n, png))
    assert_valid_docx(ours)
    theirs = docxtpl_bytes(letter_template, lambda t: letter_context(t, n, png))
    assert_same_xml(ours, theirs)
    mine, reference = document_text(ours), document_text(theirs)
    assert _without_title(mine) == _without_title(reference)
    assert mine["pictures"] == 1
    assert any("Li & <Ming>" in p or "王秀英" in p or "{{ x }}" in p or "O'Neil" in p or "赵" in p
               for p in mine["paragraphs"])
    assert "第%d号" % n in mine["headers"][0][0]


def test_values_come_out_literally(letter_template, png):
    tpl = CompiledTemplate(letter_template)
    ctx = letter_context(tpl, 2, png)
    ctx.update(name="A & B <C> {{ D }}", notes="第一行\n第二行")
    text = document_text(tpl.render_bytes(ctx))
    assert "尊敬的A & B <C> {{ D }}先生:" in text["paragraphs"]
    assert any(p.startswith("您的地址:沙湖小区2栋2单元401。备注:第一行\n第二行") for p in text["paragraphs"])
    assert text["footers"][0] == ["2020-02-24 食品包:致A & B <C> {{ D }}"]
    assert text["title"] == "致A & B <C> {{ D }}的信"   # the document properties too
    assert text["tables"][0][1] == ["蔬菜", "2", "a&b"]


def test_split_runs_fixture_equals_docxtpl():
    path = FIXTURES / "word-split-runs.docx"
    tpl = CompiledTemplate(path)
    for ctx in ({"name": "王秀英", "honorific": "奶奶", "volunteer": "李明", "address": "沙湖小区3栋"},
                {"name": "<&>", "honorific": "{% raw %}", "volunteer": "a\nb\tc",
                 "address": "九天公寓 {{ address }}"}):
        ours = tpl.render_bytes(ctx)
        assert_valid_docx(ours)
        theirs = docxtpl_bytes(path, lambda _t: ctx)
        assert_same_xml(ours, theirs)
        assert _without_title(document_text(ours)) == _without_title(document_text(theirs))
        assert "尊敬的" + ctx["name"] + ctx["honorific"] + ":" in document_text(ours)["paragraphs"]


def test_cell_loop_table_equals_docxtpl(tmp_path):
    path = build_cell_loop_template(tmp_path / "cells.docx")
    tpl = CompiledTemplate(path)
    for days in (["2月24日", "2月25日", "2月26日", "2月27日", "2月28日"], ["2月24日"]):
        ctx = {"name": "刘 & 子", "days": days}
        ours = tpl.render_bytes(ctx)
        zf = assert_valid_docx(ours)
        theirs = docxtpl_bytes(path, lambda _t: ctx)
        assert_same_xml(ours, theirs)
        assert _without_title(document_text(ours)) == _without_title(document_text(theirs))
        grid = re.findall(r"<w:gridCol\b", zf.read("word/document.xml").decode())
        assert len(grid) == 1 + len(days)   # the grid follows the cells, as docxtpl fixes it


def test_unchanged_parts_are_copied_as_they_are(letter_template, png):
    tpl = CompiledTemplate(letter_template)
    out = zipfile.ZipFile(io.BytesIO(tpl.render_bytes(letter_context(tpl, 1, png))))
    src = zipfile.ZipFile(letter_template)
    for name in ("word/styles.xml", "word/theme/theme1.xml", "word/settings.xml"):
        assert out.getinfo(name).CRC == src.getinfo(name).CRC
        assert out.getinfo(name).compress_size == src.getinfo(name).compress_size
    assert out.read("word/document.xml") != src.read("word/document.xml")


def test_fast_path_assembles_the_body_from_precompressed_pieces(letter_template, png):
    tpl = CompiledTemplate(letter_template)
    ctx = letter_context(tpl, 2, png)
    ctx.update(photo="", notes="")   # no picture to renumber, no line breaks to resolve
    tpl.render(ctx)                  # the first letter is checked the slow way
    letter = tpl.render(ctx)
    assert any(isinstance(p, int) for p in letter.pieces)
    ours = letter.to_bytes()
    assert_valid_docx(ours)
    assert_same_xml(ours, docxtpl_bytes(letter_template, lambda _t: ctx))


def test_escaped_braces_and_static_pictures(tmp_path, png):
    """docxtpl's {_{ }_} escape in fixed text, a picture in the template itself: the letters
    that follow the first keep being processed as docxtpl does."""
    doc = Document()
    doc.add_paragraph("模板说明:在 Word 里写 {_{ name }_} 会印出花括号本身。" * 6)
    doc.add_paragraph("短的:{_% raw %_}")
    doc.add_picture(str(png), width=Mm(20))
    doc.add_paragraph("致{{ name }}")
    doc.add_picture(str(png), width=Mm(10))
    path = tmp_path / "braces.docx"
    doc.save(path)
    tpl = CompiledTemplate(path)
    for name in ("王秀英", "李明", "张{_{ 芳 }_}"):
        ours = tpl.render_bytes({"name": name})
        assert_valid_docx(ours)
        assert_same_xml(ours, docxtpl_bytes(path, lambda _t: {"name": name}))
        assert document_text(ours)["paragraphs"][0].startswith("模板说明:在 Word 里写 {{ name }} 会")
        ids = re.findall(r'<wp:docPr\b[^>]*?\sid="(\d+)"', zipfile.ZipFile(io.BytesIO(ours))
                         .read("word/document.xml").decode())
        assert ids == ["1001", "1002"]


def test_letter_is_picklable_and_saved_atomically(letter_template, png, tmp_path):
    tpl = CompiledTemplate(letter_template)
    letter = tpl.render(letter_context(tpl, 3, png))
    copy = pickle.loads(pickle.dumps(letter))
    assert isinstance(copy, RenderedLetter) and copy.to_bytes() == letter.to_bytes()
    clone = pickle.loads(pickle.dumps(tpl))   # templates travel to worker processes too
    assert clone.key == tpl.key and copy.to_bytes(clone) == letter.to_bytes()
    out = tmp_path / "out" / "0003-张芳.docx"
    letter.save(out)
    saved = document_text(out.read_bytes())["paragraphs"]
    assert saved == document_text(letter.to_bytes())["paragraphs"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["0003-张芳.docx"]
    tpl.render_to(letter_context(tpl, 4, png), tmp_path / "four.docx")
    four = document_text((tmp_path / "four.docx").read_bytes())["paragraphs"]
    assert any("志愿者:志愿者{{ 1 }}" in p for p in four)


def test_listing_characters_equal_docxtpl():
    """\\n, \\t, \\a (new paragraph) and \\f (page break) in values, as docxtpl's Listing."""
    path = FIXTURES / "word-split-runs.docx"
    ctx = {"name": "甲\a乙", "honorific": "\f", "volunteer": "丙\n丁\t戊", "address": "己\x01庚"}
    ours = CompiledTemplate(path).render_bytes(ctx)
    assert_valid_docx(ours)
    mine = document_text(ours)["paragraphs"]
    reference = document_text(docxtpl_bytes(path, lambda _t: dict(ctx, address="己庚")))["paragraphs"]
    assert mine == reference and len(mine) > 4
    assert any("己庚" in p for p in mine)   # a control character a spreadsheet left is dropped


FOOTNOTES = (
    '<w:footnotes xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
    '<w:footnote w:type="separator" w:id="-1"><w:p><w:r><w:separator/></w:r></w:p></w:footnote>'
    '<w:footnote w:type="continuationSeparator" w:id="0"><w:p><w:r><w:continuationSeparator/>'
    '</w:r></w:p></w:footnote><w:footnote w:id="1"><w:p><w:r><w:t xml:space="preserve">'
    '注:物资由{{ volunteer }}送到{{ name }}家</w:t></w:r></w:p></w:footnote></w:footnotes>')


def _add_footnotes(path: Path) -> Path:
    """python-docx cannot write footnotes: add the part to the zip by hand."""
    src = zipfile.ZipFile(path)
    parts = {n: src.read(n) for n in src.namelist()}
    src.close()
    parts["word/footnotes.xml"] = FOOTNOTES.encode()
    rel = ('<Relationship Id="rIdFn1" Target="footnotes.xml" Type="http://schemas.openxmlformats'
           '.org/officeDocument/2006/relationships/footnotes"/></Relationships>')
    parts["word/_rels/document.xml.rels"] = parts["word/_rels/document.xml.rels"].replace(
        b"</Relationships>", rel.encode())
    ct = ('<Override PartName="/word/footnotes.xml" ContentType="application/vnd.openxmlformats-'
          'officedocument.wordprocessingml.footnotes+xml"/></Types>')
    parts["[Content_Types].xml"] = parts["[Content_Types].xml"].replace(b"</Types>", ct.encode())
    reference = '您好!</w:t></w:r><w:r><w:footnoteReference w:id="1"/></w:r><w:r><w:t>'
    parts["word/document.xml"] = parts["word/document.xml"].replace(
        "您好!".encode(), reference.encode(), 1)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for name, data in parts.items():
            out.writestr(name, data)
    return path


def footnote_texts(data: bytes) -> list:
    root = etree.fromstring(zipfile.ZipFile(io.BytesIO(data)).read("word/footnotes.xml"))
    w = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
    return ["".join(t.text or "" for t in note.iter(w + "t")) for note in root.iter(w + "footnote")]


def test_footnotes_are_rendered_like_docxtpl(tmp_path):
    path = tmp_path / "notes.docx"
    path.write_bytes((FIXTURES / "word-split-runs.docx").read_bytes())
    _add_footnotes(path)
    tpl = CompiledTemplate(path)
    assert tpl.variables()["volunteer"][-1] == (
        "footnotes, paragraph 3: 注:物资由{{ volunteer }}送到{{ name }}家")
    ctx = {"name": "王 & 秀英", "honorific": "", "volunteer": "李<明>", "address": "一栋"}
    ours = tpl.render_bytes(ctx)
    assert_valid_docx(ours)
    assert footnote_texts(ours) == footnote_texts(docxtpl_bytes(path, lambda _t: ctx))
    assert footnote_texts(ours)[-1] == "注:物资由李<明>送到王 & 秀英家"
    with pytest.raises(TemplateProblemError) as caught:
        tpl.render({k: v for k, v in ctx.items() if k != "volunteer"})
    assert caught.value.code == "undefined_field"


def test_picture_in_a_header(tmp_path, png):
    doc = Document()
    doc.sections[0].header.paragraphs[0].text = "{{ org }} {{ logo }}"
    doc.add_paragraph("致{{ name }}")
    path = tmp_path / "logo.docx"
    doc.save(path)
    tpl = CompiledTemplate(path)

    def ctx(t, name="王秀英"):
        return {"org": "社区", "name": name, "logo": InlineImage(t, str(png), height=Mm(10))}
    ours = tpl.render_bytes(ctx(tpl))
    zf = assert_valid_docx(ours)
    header = zf.read("word/header1.xml").decode()
    assert header.count("<w:drawing>") == 1
    (rid,) = PICTURE_RE.findall(header)
    rels = etree.fromstring(zf.read("word/_rels/header1.xml.rels"))
    target = next(r.get("Target") for r in rels if r.get("Id") == rid)
    assert zf.read("word/" + target) == png.read_bytes()
    reference = docxtpl_bytes(path, ctx)
    assert document_text(ours)["headers"] == document_text(reference)["headers"]
    extent = re.compile(r'<wp:extent cx="(\d+)" cy="(\d+)"')
    their_header = zipfile.ZipFile(io.BytesIO(reference)).read("word/header1.xml").decode()
    assert extent.search(header).groups() == extent.search(their_header).groups()   # same size
    merged = _merged(tpl, [ctx(tpl, n) for n in ("甲", "乙", "丙")], tmp_path / "m.docx")
    zf = assert_valid_docx(merged.read_bytes())
    headers = sorted(n for n in zf.namelist() if re.fullmatch(r"word/header1(-\d+)?\.xml", n))
    assert len(headers) == 3
    for name in headers:
        (rid,) = PICTURE_RE.findall(zf.read(name).decode())
        rels = etree.fromstring(zf.read(name.replace("word/", "word/_rels/") + ".rels"))
        assert zf.read("word/" + next(r.get("Target") for r in rels if r.get("Id") == rid))
    assert [s.header.paragraphs[0].text for s in Document(merged).sections] == ["社区 "] * 3


# ---------------------------------------------------------------------------
# Fields and where they are


def test_variables_match_docxtpl_and_say_where(letter_template):
    tpl = CompiledTemplate(letter_template)
    found = tpl.variables()
    reference = DocxTemplate(str(letter_template)).get_undeclared_template_variables(
        Environment(autoescape=True, undefined=StrictUndefined))
    assert set(found) == reference
    assert "item" not in found and "row" not in found and "loop" not in found
    assert found["name"][0] == "paragraph 2: 尊敬的{{ name }}{{ honorific }}:"
    assert any(p.startswith("footer 1, paragraph 1: ") for p in found["name"])
    assert any(p.startswith("document properties (title)") for p in found["name"])
    assert found["org"] == ["header 1, paragraph 1: {{ org }} · 第{{ seq }}号 / 共{{ total }}份"]
    assert found["ill"][0].startswith("paragraph 10")   # the {%p if ill %} paragraph itself
    assert found["rows"][0].startswith("paragraph ")


def test_variables_of_split_runs_fixture():
    found = CompiledTemplate(FIXTURES / "word-split-runs.docx").variables()
    assert set(found) == {"name", "honorific", "volunteer", "address"}
    assert found["volunteer"] == ["paragraph 3: …是社区的志愿者{{ volunteer }},今天为您送来慰问物资。您的地址:{…"]


# ---------------------------------------------------------------------------
# Errors


def _template_with(tmp_path, body=(), header=None) -> Path:
    doc = Document()
    if header is not None:
        doc.sections[0].header.paragraphs[0].text = header
    for text in body:
        doc.add_paragraph(text)
    path = tmp_path / "broken.docx"
    doc.save(path)
    return path


def test_syntax_error_names_the_paragraph(tmp_path):
    path = _template_with(tmp_path, ["致居民", "尊敬的{{ name }}",
                                     "{% for x in items %}{{ x }}{% endfro %}"])
    with pytest.raises(TemplateProblemError) as caught:
        CompiledTemplate(path)
    err = caught.value
    assert err.code == "template_syntax"
    assert err.where.file == str(path) and err.where.part == "paragraph 3"
    assert "endfro" in err.message and "{% for x in items %}" in err.message
    assert err.hint


def test_syntax_error_in_header(tmp_path):
    path = _template_with(tmp_path, ["正文 {{ name }}"], header="第{{ seq }号")
    with pytest.raises(TemplateProblemError) as caught:
        CompiledTemplate(path)
    assert caught.value.code == "template_syntax"
    assert caught.value.where.part == "header 1, paragraph 1"


def test_missing_field_is_an_error_not_a_blank(tmp_path):
    path = _template_with(tmp_path, ["致居民", "尊敬的{{ nme }}:", "再见"])
    tpl = CompiledTemplate(path)
    assert tpl.variables() == {"nme": ["paragraph 2: 尊敬的{{ nme }}:"]}
    with pytest.raises(TemplateProblemError) as caught:
        tpl.render({"name": "王秀英"})
    err = caught.value
    assert err.code == "undefined_field" and err.field == "nme"
    assert err.where.part == "paragraph 2" and "'nme'" in err.message
    with pytest.raises(TemplateProblemError) as caught:
        tpl.render({})
    assert caught.value.code == "undefined_field"


def test_missing_attribute_names_the_field(tmp_path):
    path = _template_with(tmp_path, ["{{ household.phone }}"])
    with pytest.raises(TemplateProblemError) as caught:
        CompiledTemplate(path).render({"household": {"name": "王"}})
    assert caught.value.code == "undefined_field" and caught.value.field == "phone"


@pytest.mark.parametrize("content, words", [
    (b"this is a plain text file", "not a Word .docx"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600, ".doc file"),
    (None, "word/document.xml"),
])
def test_not_a_docx(tmp_path, content, words):
    path = tmp_path / "letter.docx"
    if content is None:
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("[Content_Types].xml", "<Types xmlns='http://schemas.openxmlformats.org/"
                        "package/2006/content-types'/>")
            zf.writestr("readme.txt", "hello")
    else:
        path.write_bytes(content)
    with pytest.raises(InputError) as caught:
        CompiledTemplate(path)
    assert caught.value.code == "bad_template" and words in caught.value.message
    assert caught.value.where.file == str(path) and caught.value.hint
    with pytest.raises(InputError):
        CompiledTemplate(path.read_bytes())


def test_missing_template_file(tmp_path):
    with pytest.raises(InputError) as caught:
        CompiledTemplate(tmp_path / "nope.docx")
    assert caught.value.code == "template_not_found"


def test_unreadable_image_is_a_render_error(tmp_path):
    path = _template_with(tmp_path, ["照片 {{ photo }}"])
    tpl = CompiledTemplate(path)
    bad = tmp_path / "photo.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(TemplateProblemError) as caught:
        tpl.render({"photo": InlineImage(tpl, str(bad))})
    assert caught.value.code == "render_failed" and caught.value.where.part == "paragraph 1"


# ---------------------------------------------------------------------------
# Many letters in one document


def _merged(tpl, contexts, path):
    with MergedDocument(tpl, path) as merged:
        for ctx in contexts:
            merged.add(tpl.render(ctx))
    return path


def test_merged_document_has_every_letter_in_order(letter_template, png, tmp_path):
    tpl = CompiledTemplate(letter_template)
    pngs = [make_png(tmp_path / f"p{i}.png", colour=(i * 40, 0, 0)) for i in range(3)]
    contexts = [letter_context(tpl, n, pngs[n % 3]) for n in range(7)]
    singles = [document_text(tpl.render_bytes(ctx)) for ctx in contexts]
    path = _merged(tpl, contexts, tmp_path / "letters.docx")
    data = path.read_bytes()
    zf = assert_valid_docx(data)
    text = document_text(data)
    assert text["paragraphs"] == [p for s in singles for p in s["paragraphs"]]
    assert text["tables"] == [t for s in singles for t in s["tables"]]
    assert text["headers"] == [s["headers"][0] for s in singles]
    assert text["footers"] == [s["footers"][0] for s in singles]
    assert text["pictures"] == 7
    doc = Document(io.BytesIO(data))
    assert len(doc.sections) == 7
    assert all(s.start_type == WD_SECTION.NEW_PAGE for s in doc.sections)
    # relationships: unique ids, every reference resolves, one image part per distinct picture
    rels = etree.fromstring(zf.read("word/_rels/document.xml.rels"))
    ids = [r.get("Id") for r in rels]
    assert len(ids) == len(set(ids))
    body = zf.read("word/document.xml").decode()
    assert set(PICTURE_RE.findall(body)) <= set(ids)
    assert len({n for n in zf.namelist() if n.startswith("word/media/")}) == 3
    assert len(set(PICTURE_RE.findall(body))) == 3
    docpr = re.findall(r'<wp:docPr\b[^>]*?\sid="(\d+)"', body)
    assert len(docpr) == 7 and len(set(docpr)) == 7
    links = re.findall(r'<w:hyperlink r:id="([^"]+)"', body)
    assert len(links) == 7 and len(set(links)) == 1 and links[0] in ids


def test_merged_document_streams_and_is_atomic(tmp_path):
    tpl = CompiledTemplate(FIXTURES / "word-split-runs.docx")
    target = tmp_path / "letters.docx"
    with pytest.raises(RuntimeError):
        with MergedDocument(tpl, target) as merged:
            merged.add(tpl.render({"name": "王", "honorific": "", "volunteer": "", "address": ""}))
            raise RuntimeError("stopped half way")
    assert list(tmp_path.iterdir()) == []
    contexts = [{"name": f"居民{i}", "honorific": "", "volunteer": "李明", "address": f"{i}栋"}
                for i in range(300)]
    _merged(tpl, contexts, target)
    assert list(tmp_path.iterdir()) == [target]
    doc = Document(target)
    names = [p.text for p in doc.paragraphs if p.text.startswith("尊敬的")]
    assert names == [f"尊敬的居民{i}:" for i in range(300)]
    assert len(doc.sections) == 300


def test_merged_document_memory_does_not_grow_with_letters(tmp_path):
    tpl = CompiledTemplate(FIXTURES / "word-split-runs.docx")

    def peak(n: int) -> int:
        """The most memory used while adding ``n`` letters (closing copies in fixed chunks)."""
        tracemalloc.start()
        with MergedDocument(tpl, tmp_path / f"m{n}.docx") as merged:
            for i in range(n):
                merged.add(tpl.render({"name": f"居民{i}", "honorific": "", "volunteer": "李明",
                                       "address": f"沙湖小区{i}栋"}))
            top = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return top
    small, large = peak(100), peak(1000)
    assert large < small * 1.2, (small, large)
    assert len(Document(tmp_path / "m1000.docx").sections) == 1000


def test_merged_body_ending_with_a_table(tmp_path):
    doc = Document()
    doc.add_paragraph("致{{ name }}")
    doc.add_table(rows=1, cols=2).cell(0, 0).text = "{{ name }}"
    path = tmp_path / "table-last.docx"
    doc.save(path)
    tpl = CompiledTemplate(path)
    merged = _merged(tpl, [{"name": n} for n in ("甲", "乙", "丙")], tmp_path / "m.docx")
    data = merged.read_bytes()
    assert_valid_docx(data)
    body = etree.fromstring(zipfile.ZipFile(io.BytesIO(data)).read("word/document.xml"))[0]
    tags = [etree.QName(child).localname for child in body]
    assert tags == ["p", "tbl", "p"] * 2 + ["p", "tbl", "sectPr"]   # a section break after each
    assert [p.text for p in Document(merged).paragraphs if p.text] == ["致甲", "致乙", "致丙"]
    assert len(Document(merged).sections) == 3


def test_merged_letter_from_another_template_is_refused(tmp_path, letter_template, png):
    tpl = CompiledTemplate(FIXTURES / "word-split-runs.docx")
    other = CompiledTemplate(letter_template)
    with pytest.raises(ValueError):
        with MergedDocument(tpl, tmp_path / "m.docx") as merged:
            merged.add(other.render(letter_context(other, 1, png)))
    assert not (tmp_path / "m.docx").exists()


def test_merged_letters_start_on_new_pages_in_libreoffice(letter_template, png, tmp_path):
    import pypdf

    soffice = require_program("soffice", "libreoffice-writer")
    tpl = CompiledTemplate(letter_template)
    single = tmp_path / "single.docx"
    tpl.render_to(letter_context(tpl, 1, png), single)
    merged = _merged(tpl, [letter_context(tpl, 1, png)] * 3, tmp_path / "merged.docx")
    env = dict(os.environ, HOME=str(tmp_path))
    subprocess.run([soffice, "--headless", "--convert-to", "pdf", "--outdir", str(tmp_path),
                    str(single), str(merged)],
                   check=True, capture_output=True, timeout=180, env=env)
    pages = len(pypdf.PdfReader(tmp_path / "single.pdf").pages)
    reader = pypdf.PdfReader(tmp_path / "merged.pdf")
    assert len(reader.pages) == 3 * pages
    firsts = [reader.pages[i * pages].extract_text() for i in range(3)]
    assert all("爱不隔离" in text for text in firsts)


# ---------------------------------------------------------------------------
# What makes it fast, without changing what comes out


def test_docxtpl_rules_are_docxtpls_own_without_python_docx():
    """patch_xml, resolve_listing and fix_tables come from docxtpl's source, line for line,
    and importing the renderer does not import python-docx or docxtpl."""
    from letterpress.docx import docxtpl_rules as render_docxtpl

    assert render_docxtpl.SOURCE == "docxtpl source"
    for ours, theirs in ((render_docxtpl.patch, DocxTemplate.patch_xml),
                         (render_docxtpl.listing, DocxTemplate.resolve_listing),
                         (render_docxtpl.fix_tables, DocxTemplate.fix_tables)):
        assert ours.func.__code__.co_filename == theirs.__code__.co_filename
        assert ours.func.__code__.co_firstlineno == theirs.__code__.co_firstlineno
    xml = zipfile.ZipFile(FIXTURES / "word-split-runs.docx").read("word/document.xml").decode()
    assert render_docxtpl.patch(xml) == DocxTemplate.patch_xml(None, xml)
    run = '<w:p><w:r><w:t xml:space="preserve">甲\n乙\t丙\a丁\f戊</w:t></w:r></w:p>'
    assert render_docxtpl.listing(run) == DocxTemplate.resolve_listing(None, run)
    code = ("import sys, letterpress.docx.template, letterpress.pipeline.letters, letterpress.pipeline.build; "
            "print(sorted(m for m in ('docx', 'docxtpl') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "[]"


def _header_footer_template(tmp_path: Path) -> Path:
    doc = Document()
    doc.sections[0].header.paragraphs[0].text = "{{ org }}:{{ batch }}"
    doc.sections[0].footer.paragraphs[0].text = "第{{ seq }}封 / 共{{ total }}封"
    doc.add_paragraph("致{{ name }}:您好!" + "社区工作者与您同在。" * 20)
    path = tmp_path / "hf.docx"
    doc.save(path)
    return path


def test_headers_and_footers_are_written_from_ready_pieces(tmp_path):
    path = _header_footer_template(tmp_path)
    tpl = CompiledTemplate(path)
    contexts = [{"org": "青鱼嘴社区 & 街道", "batch": "第一批", "seq": i, "total": 3,
                 "name": name} for i, name in enumerate(("王秀英", "Li <Ming>", "张'芳\""), 1)]
    letters = [tpl.render(ctx) for ctx in contexts]
    for letter in letters[1:]:   # the first letter of a template is checked the slow way
        assert all(any(isinstance(p, int) for p in pieces) for _, pieces in letter.parts)
    for letter, ctx in zip(letters, contexts):
        ours = letter.to_bytes()
        assert_valid_docx(ours)
        assert_same_xml(ours, docxtpl_bytes(path, lambda _t: ctx))
    # the header's fields did not change: it is not rendered again, the footer's did
    header = [dict(letter.parts)["word/header1.xml"] for letter in letters]
    footer = [dict(letter.parts)["word/footer1.xml"] for letter in letters]
    assert header[1] is header[2] and footer[1] != footer[2]
    changed = tpl.render(dict(contexts[0], org="九天公寓"))
    assert document_text(changed.to_bytes())["headers"] == [["九天公寓:第一批"]]


def test_plain_values_of_another_type_render_again(tmp_path):
    """1, True and 1.0 are equal in Python but print differently."""
    doc = Document()
    doc.sections[0].header.paragraphs[0].text = "标记:{{ mark }}"
    doc.add_paragraph("{{ name }}")
    path = tmp_path / "mark.docx"
    doc.save(path)
    tpl = CompiledTemplate(path)
    seen = [document_text(tpl.render_bytes({"mark": mark, "name": "王"}))["headers"][0][0]
            for mark in (1, 1, True, 1.0, "1")]
    assert seen == ["标记:1", "标记:1", "标记:True", "标记:1.0", "标记:1"]


def test_merged_document_shares_a_header_that_reads_the_same(tmp_path):
    path = _header_footer_template(tmp_path)
    tpl = CompiledTemplate(path)
    contexts = [{"org": "社区", "batch": "第一批" if i <= 3 else "第二批", "seq": i,
                 "total": 4, "name": f"居民{i}"} for i in range(1, 5)]
    merged = _merged(tpl, contexts, tmp_path / "m.docx")
    zf = assert_valid_docx(merged.read_bytes())
    headers = sorted(n for n in zf.namelist() if re.fullmatch(r"word/header1(-\d+)?\.xml", n))
    footers = sorted(n for n in zf.namelist() if re.fullmatch(r"word/footer1(-\d+)?\.xml", n))
    assert len(headers) == 2 and len(footers) == 4    # letters 1-3 share the first header
    doc = Document(merged)
    assert [s.header.paragraphs[0].text for s in doc.sections] == \
        ["社区:第一批"] * 3 + ["社区:第二批"]
    assert [s.footer.paragraphs[0].text for s in doc.sections] == \
        [f"第{i}封 / 共4封" for i in range(1, 5)]
    assert [p.text[:5] for p in doc.paragraphs if p.text] == [f"致居民{i}:" for i in range(1, 5)]


def test_template_from_file_is_compiled_once(tmp_path, letter_template):
    tpl = CompiledTemplate(letter_template)
    assert CompiledTemplate.from_file(letter_template) is tpl
    copy = tmp_path / "copy.docx"
    copy.write_bytes(letter_template.read_bytes())
    assert CompiledTemplate.from_file(copy) is not tpl      # errors name the file asked for
    _header_footer_template(tmp_path).replace(letter_template)
    changed = CompiledTemplate.from_file(letter_template)
    assert changed is not tpl and "org" in changed.variables() and "rows" not in changed.variables()
    with pytest.raises(InputError):
        CompiledTemplate.from_file(tmp_path / "missing.docx")


def test_body_without_tags_and_a_header_with_them(tmp_path):
    doc = Document()
    doc.sections[0].header.paragraphs[0].text = "致{{ name }}"
    doc.add_paragraph("一封没有字段的信。" * 30)
    path = tmp_path / "static-body.docx"
    doc.save(path)
    tpl = CompiledTemplate(path)
    for name in ("王秀英", "李明", "李明"):
        ours = tpl.render_bytes({"name": name})
        assert_valid_docx(ours)
        assert_same_xml(ours, docxtpl_bytes(path, lambda _t: {"name": name}))
    merged = _merged(tpl, [{"name": n} for n in ("甲", "乙", "乙")], tmp_path / "m.docx")
    assert [s.header.paragraphs[0].text for s in Document(merged).sections] == ["致甲", "致乙", "致乙"]


def test_load_returns_a_frozen_description_the_template_holds(letter_template):
    import dataclasses

    from letterpress.docx.load import Loaded, load
    from letterpress.docx.package import Package

    tpl = CompiledTemplate(letter_template)
    assert isinstance(tpl.loaded, Loaded) and dataclasses.is_dataclass(tpl.loaded)
    with pytest.raises(dataclasses.FrozenInstanceError):
        tpl.loaded.head = b""
    again = load(tpl, Package(letter_template.read_bytes()))   # sets nothing on tpl
    assert again is not tpl.loaded and again.head == tpl.loaded.head
    private = {k for k in vars(tpl) if k.startswith("_")}
    assert not private & {"_body", "_static", "_head", "_parts", "_core", "_doc_name"}


def test_a_template_the_fast_path_cannot_read_is_rendered_by_docxtpl(letter_template, png,
                                                                     monkeypatch):
    """The safety net: a reading failure of ours (simulated here) renders with docxtpl,
    says why and that it is slower, and gives the same letter."""
    fast = CompiledTemplate(letter_template)
    expected = document_text(fast.render_bytes(letter_context(fast, 1, png)))

    def broken(tpl, pkg):
        raise KeyError("word/unusual.xml")
    monkeypatch.setattr("letterpress.docx.template.FALLBACK_ON_ERROR", True)
    monkeypatch.setattr("letterpress.docx.template.load", broken)
    slow = CompiledTemplate(letter_template)
    assert not slow.fast
    assert "slower" in slow.notice() and "word/unusual.xml" in slow.notice()
    assert document_text(slow.render_bytes(letter_context(slow, 1, png))) == expected
    assert set(slow.variables()) == set(fast.variables())
