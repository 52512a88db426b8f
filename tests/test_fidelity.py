"""Fidelity: every docxtpl feature rendered by docxtpl and by us gives the same document.

Each feature is a small template made here with python-docx, rendered by docxtpl itself
(a fresh ``DocxTemplate``, its own default settings unless the feature says otherwise)
and by :class:`CompiledTemplate` through the same calls (``replace_pic``, ``new_subdoc``...).
Compared: the text of every paragraph, table cell, header and footer; the canonical XML
of the body, headers and footers (relationship ids blanked, as they may differ); the
pictures each part shows (their bytes); and, for a representative subset, the pages
LibreOffice draws from both (rendered with pypdfium2, compared pixel by pixel).

``python tests/test_fidelity.py`` prints the fidelity table that README shows.
"""
from __future__ import annotations

import hashlib
import io
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

import pytest
from docx import Document
from docx.shared import Mm, Pt
from docxtpl import DocxTemplate, InlineImage, RichText
from jinja2 import Environment, StrictUndefined
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import require_program  # noqa: E402
from test_render import (  # noqa: E402
    assert_valid_docx,
    build_cell_loop_template,
    build_letter_template,
    canonical_xml,
    letter_context,
)

from letterpress.docx.template import CompiledTemplate, MergedDocument  # noqa: E402


@pytest.fixture(autouse=True)
def _fast_path_only(monkeypatch):
    monkeypatch.setattr("letterpress.docx.template.FALLBACK_ON_ERROR", False)


# ---------------------------------------------------------------------------
# Pictures and small documents


def png(path: Path, colour, size=(60, 30)) -> Path:
    Image.new("RGB", size, colour).save(path, dpi=(96, 96))
    return path


def jpeg(path: Path, colour, size=(60, 30)) -> Path:
    Image.new("RGB", size, colour).save(path, "JPEG", dpi=(96, 96))
    return path


def sub_document(folder: Path) -> Path:
    """A document to insert: its own heading style, a numbered list, a picture, a table."""
    doc = Document()
    style = doc.styles.add_style("插入的标题", 1)
    style.font.size = Pt(20)
    style.font.bold = True
    doc.add_paragraph("防疫须知", style="插入的标题")
    for text in ("少出门、不聚集", "出门戴口罩", "回家勤洗手"):
        doc.add_paragraph(text, style="List Number")
    doc.add_picture(str(png(folder / "sub-green.png", (20, 160, 60), (80, 40))), width=Mm(30))
    table = doc.add_table(rows=2, cols=2)
    table.style = "Table Grid"
    for (r, c), text in zip(((0, 0), (0, 1), (1, 0), (1, 1)), ("物资", "数量", "口罩", "20")):
        table.cell(r, c).text = text
    out = folder / "sub.docx"
    doc.save(str(out))
    return out


# ---------------------------------------------------------------------------
# The features: a template, how to render it, and what to compare


@dataclass
class Feature:
    name: str
    label: str                                   # for the README table
    build: Callable[[Path], Path]                # folder -> template path
    context: Callable[[object, Path], dict]      # (template object, folder) -> context
    prepare: Optional[Callable[[object, Path], None]] = None   # replace_pic and co.
    env: Optional[Callable[[], Environment]] = None            # docxtpl's jinja_env
    ours: Optional[dict] = None                  # CompiledTemplate keyword arguments
    pixels: bool = False                         # compare the pages LibreOffice draws
    same_xml: bool = True


def _letter(folder: Path) -> Path:
    return build_letter_template(folder / "letter.docx")


def _letter_context(tpl, folder: Path) -> dict:
    return letter_context(tpl, 3, png(folder / "photo.png", (200, 30, 30)))


def _escaping_env() -> Environment:
    return Environment(autoescape=True, undefined=StrictUndefined)


def _entities(folder: Path) -> Path:
    doc = Document()
    doc.add_paragraph('单位:{{ dept|default("R&D 部门") }}')
    doc.add_paragraph('{{ "甲&乙" if urgent else "" }}:{{ name }}')
    path = folder / "entities.docx"
    doc.save(str(path))
    return path


def _comments(folder: Path) -> Path:
    doc = Document()
    doc.add_paragraph("尊敬的{{ name }}{# 称呼由表格提供 #}:")
    doc.add_paragraph("{#p 这一段只给制作模板的人看 #}")
    doc.add_paragraph("请查收。")
    table = doc.add_table(rows=3, cols=3)
    table.style = "Table Grid"
    rows = (("物资", "{#tc 备注列已停用 #}", "数量"), ("{#tr 旧的一行 #}", "", ""),
            ("{{ item }}", "{#tc 旧备注 #}", "{{ count }}"))
    for r, texts in enumerate(rows):
        for c, text in enumerate(texts):
            table.cell(r, c).text = text
    path = folder / "comments.docx"
    doc.save(str(path))
    return path


def _cells(folder: Path) -> Path:
    doc = Document()
    table = doc.add_table(rows=2, cols=3)
    table.style = "Table Grid"
    texts = (("{% cellbg colour %}状态", "{% colspan span %}合并", "x"),
             ("{{ a }}", "{{ b }}", "{{ c }}"))
    for r, row in enumerate(texts):
        for c, text in enumerate(row):
            table.cell(r, c).text = text
    path = folder / "cells.docx"
    doc.save(str(path))
    return path


def _merges(folder: Path) -> Path:
    doc = Document()
    table = doc.add_table(rows=3, cols=2)
    table.style = "Table Grid"
    texts = (("{%tr for row in rows %}", ""), ("{% vm %}{{ row.group }}", "{{ row.item }}"),
             ("{%tr endfor %}", ""))
    for r, row in enumerate(texts):
        for c, text in enumerate(row):
            table.cell(r, c).text = text
    path = folder / "merges.docx"
    doc.save(str(path))
    return path


def _defaults(folder: Path) -> Path:
    doc = Document()
    doc.add_paragraph('{{ name }},{{ nickname|default("朋友") }}')
    doc.add_paragraph("{% if phone is defined %}电话:{{ phone }}{% else %}无电话{% endif %}")
    doc.add_paragraph('{{ note if note is defined else "无备注" }}')
    path = folder / "defaults.docx"
    doc.save(str(path))
    return path


def _filters(folder: Path) -> Path:
    doc = Document()
    doc.add_paragraph("补助:{{ amount|yuan }};热线:{{ hotline() }}")
    doc.add_paragraph("{% if phone is mobile %}手机{% else %}座机{% endif %}")
    path = folder / "filters.docx"
    doc.save(str(path))
    return path


def yuan(value) -> str:
    return f"¥{value:,.2f}"


def hotline() -> str:
    return "027-8765 4321"


def is_mobile(value) -> bool:
    return str(value).startswith("1") and len(str(value)) == 11


def _filters_env() -> Environment:
    env = Environment()
    env.filters["yuan"] = yuan
    env.globals["hotline"] = hotline
    env.tests["mobile"] = is_mobile
    return env


def _pictures(folder: Path) -> Path:
    """A dummy stamp in the header and the body, a logo in the footer."""
    doc = Document()
    section = doc.sections[0]
    section.header.paragraphs[0].add_run("{{ org }} ").add_picture(
        str(png(folder / "dummy.png", (200, 200, 200), (60, 60))), width=Mm(15))
    section.footer.paragraphs[0].add_run().add_picture(
        str(png(folder / "logo.png", (10, 10, 120), (90, 30))), width=Mm(20))
    doc.add_paragraph("致{{ name }}:")
    doc.add_paragraph().add_run().add_picture(str(folder / "dummy.png"), width=Mm(25))
    doc.add_paragraph("此致敬礼")
    path = folder / "pictures.docx"
    doc.save(str(path))
    return path


def _replace_pic(tpl, folder: Path) -> None:
    tpl.replace_pic("dummy.png", str(png(folder / "stamp.png", (220, 20, 20), (60, 60))))


def _replace_media(tpl, folder: Path) -> None:
    tpl.replace_media(str(folder / "logo.png"), str(png(folder / "logo2.png", (0, 140, 0),
                                                        (90, 30))))
    tpl.replace_zipname("word/media/image1.png",
                        str(png(folder / "zipname.png", (240, 200, 0), (60, 60))))


def _subdoc(folder: Path) -> Path:
    doc = Document()
    doc.add_paragraph("致{{ name }}:")
    doc.add_paragraph("{{p notice }}")
    doc.add_paragraph("{{p extra }}")
    doc.add_paragraph("此致敬礼")
    path = folder / "subdoc.docx"
    doc.save(str(path))
    return path


def _subdoc_context(tpl, folder: Path) -> dict:
    extra = tpl.new_subdoc()
    extra.add_paragraph("另附:社区服务电话 027-8765 4321", style="List Bullet")
    extra.add_picture(str(png(folder / "extra.png", (120, 0, 160), (40, 40))), width=Mm(12))
    return {"name": "王秀英", "notice": tpl.new_subdoc(str(sub_document(folder))),
            "extra": extra}


def _inline(folder: Path) -> Path:
    doc = Document()
    doc.add_paragraph("二维码:{{ qr }}")
    doc.add_paragraph("联系:{{r contact }}")
    path = folder / "inline.docx"
    doc.save(str(path))
    return path


def _inline_context(tpl, folder: Path) -> dict:
    rich = RichText("热线 ", bold=True)
    rich.add("027-8765 4321", color="C00000", url_id=tpl.build_url_id("https://example.org/"))
    return {"qr": InlineImage(tpl, str(jpeg(folder / "qr.jpg", (0, 0, 0), (50, 50))),
                              width=Mm(20)), "contact": rich}


FEATURES: List[Feature] = [
    Feature("letter", "tags across runs, {%p %}, {%tr %}, {{r }}, RichText, InlineImage, "
            "headers, footers, properties", _letter, _letter_context, env=_escaping_env,
            pixels=True),
    Feature("entities", "entities inside tags (`default(\"R&D\")`)", _entities,
            lambda tpl, f: {"urgent": True, "name": "李明"}),
    Feature("comments", "comment tags {# #}, {#p #}, {#tr #}, {#tc #} (table grid repaired)",
            _comments, lambda tpl, f: {"name": "王秀英", "item": "口罩", "count": 20},
            pixels=True),
    Feature("cell_loop", "{%tc for %} columns (table grid widened)",
            lambda f: build_cell_loop_template(f / "cells-loop.docx"),
            lambda tpl, f: {"name": "张建国", "days": ["2月24日", "2月25日", "2月26日"]}),
    Feature("cell_tags", "{% cellbg %}, {% colspan %}", _cells,
            lambda tpl, f: {"colour": "FFC000", "span": 2, "a": 1, "b": 2, "c": 3}),
    Feature("merges", "{% vm %} cells merged down a {%tr for %} loop", _merges,
            lambda tpl, f: {"rows": [{"group": "第一组", "item": "口罩"},
                                     {"group": "第一组", "item": "手套"}]}),
    Feature("defaults", "default() and `is defined` for fields not given", _defaults,
            lambda tpl, f: {"name": "王秀英"}),
    Feature("filters", "custom filters, globals and tests (jinja_env / filters=)", _filters,
            lambda tpl, f: {"amount": 1234.5, "phone": "13800138000"}, env=_filters_env,
            ours={"filters": {"yuan": yuan}, "globals": {"hotline": hotline},
                  "tests": {"mobile": is_mobile}}),
    Feature("replace_pic", "replace_pic in the body and the header", _pictures,
            lambda tpl, f: {"org": "青鱼嘴社区", "name": "王秀英"}, prepare=_replace_pic,
            pixels=True),
    Feature("replace_media", "replace_media (footer logo), replace_zipname", _pictures,
            lambda tpl, f: {"org": "青鱼嘴社区", "name": "王秀英"}, prepare=_replace_media),
    Feature("subdoc", "sub-documents: new_subdoc(path) with styles, numbering, picture and "
            "table; new_subdoc() filled with python-docx", _subdoc, _subdoc_context,
            pixels=True),
    Feature("inline", "InlineImage (JPEG) and RichText links", _inline, _inline_context),
]
BY_NAME = {f.name: f for f in FEATURES}


def render_docxtpl(feature: Feature, folder: Path) -> bytes:
    path = feature.build(folder)
    tpl = DocxTemplate(str(path))
    if feature.prepare:
        feature.prepare(tpl, folder)
    context = feature.context(tpl, folder)
    if feature.env:
        tpl.render(context, jinja_env=feature.env())
    else:
        tpl.render(context)
    out = io.BytesIO()
    tpl.save(out)
    return out.getvalue()


def render_ours(feature: Feature, folder: Path, **extra) -> bytes:
    path = feature.build(folder)
    tpl = CompiledTemplate(str(path), **(feature.ours or {}), **extra)
    if feature.prepare:
        feature.prepare(tpl, folder)
    return tpl.render(feature.context(tpl, folder)).to_bytes(tpl)


# ---------------------------------------------------------------------------
# Reading both back


def all_text(data: bytes) -> dict:
    """Every paragraph, every table cell (nested too), header and footer, in order."""
    doc = Document(io.BytesIO(data))

    def cells(tables):
        return [[[(c.text, cells(c.tables)) for c in row.cells] for row in t.rows] for t in tables]
    return {
        "paragraphs": [p.text for p in doc.paragraphs],
        "tables": cells(doc.tables),
        "headers": [[p.text for p in s.header.paragraphs] for s in doc.sections],
        "footers": [[p.text for p in s.footer.paragraphs] for s in doc.sections],
        "title": doc.core_properties.title,
    }


def pictures_shown(data: bytes) -> dict:
    """For the body, each header and footer: the digests of the pictures it shows, in order."""
    doc = Document(io.BytesIO(data))
    parts = [("body", doc.part)] + [(f"header {i}", s.header.part) for i, s in
                                    enumerate(doc.sections)]
    parts += [(f"footer {i}", s.footer.part) for i, s in enumerate(doc.sections)]
    out = {}
    for label, part in parts:
        rids = re.findall(r'r:(?:embed|id)="([^"]+)"', part.blob.decode("utf-8"))
        out[label] = [hashlib.sha1(part.related_parts[r].blob).hexdigest()[:12] for r in rids
                      if r in part.related_parts and "image" in part.rels[r].reltype]
    return out


def xml_parts(data: bytes) -> List[str]:
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    return [n for n in names if re.fullmatch(r"word/(document|header\d+|footer\d+)\.xml", n)]


def same_xml(ours: bytes, theirs: bytes) -> bool:
    return all(canonical_xml(ours, n) == canonical_xml(theirs, n) for n in xml_parts(theirs))


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Dict[str, tuple]:
    """Every feature rendered both ways (each in a folder of its own)."""
    out = {}
    for feature in FEATURES:
        folder = tmp_path_factory.mktemp(feature.name)
        out[feature.name] = (render_ours(feature, folder), render_docxtpl(feature, folder), folder)
    return out


@pytest.mark.parametrize("name", [f.name for f in FEATURES])
def test_same_text_as_docxtpl(rendered, name):
    ours, theirs, _ = rendered[name]
    assert_valid_docx(ours)
    assert all_text(ours) == all_text(theirs)


@pytest.mark.parametrize("name", [f.name for f in FEATURES])
def test_same_pictures_as_docxtpl(rendered, name):
    ours, theirs, _ = rendered[name]
    assert pictures_shown(ours) == pictures_shown(theirs)


@pytest.mark.parametrize("name", [f.name for f in FEATURES if f.same_xml])
def test_same_xml_as_docxtpl(rendered, name):
    ours, theirs, _ = rendered[name]
    for part in xml_parts(theirs):
        assert canonical_xml(ours, part) == canonical_xml(theirs, part), part


def test_entities_read_as_docxtpl_writes_them(rendered):
    text = all_text(rendered["entities"][0])["paragraphs"]
    assert text == ["单位:R&D 部门", "甲&乙:李明"]


def test_entities_inside_tags_where_docxtpl_breaks(tmp_path):
    """Where docxtpl's default settings write broken XML (a value or literal holding & or <),
    ours reads as typed: a literal compared with a value means what the user typed."""
    doc = Document()
    doc.add_paragraph('{% if kind == "R&D" %}研发{% else %}其他{% endif %}:{{ kind }}')
    doc.add_paragraph("{{ '<注意>' }}{{ name }}")
    doc.save(str(tmp_path / "t.docx"))
    tpl = CompiledTemplate(str(tmp_path / "t.docx"))
    text = all_text(tpl.render({"kind": "R&D", "name": "李明"}).to_bytes(tpl))["paragraphs"]
    assert text == ["研发:R&D", "<注意>李明"]


def test_comment_tags_remove_the_column_from_the_grid(rendered):
    doc = Document(io.BytesIO(rendered["comments"][0]))
    table = doc.tables[0]
    assert len(table.columns) == 2 == len(table.rows[0].cells)
    assert [[c.text for c in row.cells] for row in table.rows] == [["物资", "数量"],
                                                                   ["口罩", "20"]]


def test_subdoc_brings_its_styles_numbering_and_pictures(rendered):
    ours = Document(io.BytesIO(rendered["subdoc"][0]))
    styles = [p.style.name for p in ours.paragraphs]
    assert "插入的标题" in styles and styles.count("List Number") == 3
    numbered = [p for p in ours.paragraphs if p.style.name == "List Number"]
    assert all(p._p.pPr is not None for p in numbered)
    assert len(ours.inline_shapes) == 2
    assert ours.part.numbering_part is not None


def test_a_subdoc_keeps_the_letters_document_properties(tmp_path):
    """docxcompose (docxtpl's sub-documents) remaps python-docx's ``cp`` prefix; the template
    read again after a sub-document still has its keywords and revision where Word reads them."""
    from docx.oxml.ns import nsmap

    from letterpress.docx import subdocs

    subdocs.restore_namespaces()
    path = _subdoc(tmp_path)
    doc = Document(str(path))
    doc.core_properties.keywords, doc.core_properties.revision = "慰问信", 7
    doc.save(str(path))
    nsmap["cp"] = "http://schemas.openxmlformats.org/officeDocument/2006/custom-properties"
    tpl = CompiledTemplate(str(path))     # as after `import docxcompose`
    letter = tpl.render(_subdoc_context(tpl, tmp_path)).to_bytes(tpl)
    props = Document(io.BytesIO(letter)).core_properties
    assert props.keywords == "慰问信" and props.revision == 7


def test_missing_field_is_still_an_error(tmp_path):
    from letterpress.errors import TemplateProblemError

    tpl = CompiledTemplate(str(_defaults(tmp_path)))
    assert set(tpl.variables()) == {"name"}
    assert set(tpl.optional_variables()) == {"nickname", "phone", "note"}
    with pytest.raises(TemplateProblemError) as caught:
        tpl.render({})
    assert caught.value.code == "undefined_field" and "name" in str(caught.value)


def test_get_undeclared_template_variables_equals_docxtpls(tmp_path):
    for feature in FEATURES:
        path = feature.build(tmp_path)
        theirs = DocxTemplate(str(path)).get_undeclared_template_variables(
            feature.env() if feature.env else None)
        ours = CompiledTemplate(str(path), **(feature.ours or {}))
        assert ours.get_undeclared_template_variables() >= theirs, feature.name
        context = {name: 1 for name in list(theirs)[:1]}
        assert ours.get_undeclared_template_variables(context=context) == \
            ours.get_undeclared_template_variables() - set(context)


def test_docxtpl_engine_gives_the_same_letter(tmp_path):
    """The fallback (docxtpl itself, in our sandbox) and the fast path agree."""
    for name in ("letter", "replace_pic", "subdoc", "filters"):
        feature = BY_NAME[name]
        folder = tmp_path / name
        folder.mkdir()
        fast = render_ours(feature, folder)
        slow = render_ours(feature, folder, engine="docxtpl")
        assert all_text(slow) == all_text(fast), name
        assert pictures_shown(slow) == pictures_shown(fast), name


def test_render_takes_docxtpls_jinja_env(rendered, tmp_path):
    """Code written for docxtpl passes its filters as ``jinja_env`` (to the constructor, as
    the template is compiled once, and to render): they are added, in the sandbox (Jinja's
    own filters stay the sandbox's)."""
    from letterpress.docx import sandbox

    feature = BY_NAME["filters"]
    tpl = CompiledTemplate(str(feature.build(tmp_path)), jinja_env=_filters_env())
    letter = tpl.render(feature.context(tpl, tmp_path), jinja_env=_filters_env())
    assert all_text(letter.to_bytes(tpl)) == all_text(rendered["filters"][1])
    assert dict(tpl.jinja.filters) == {"yuan": yuan} and isinstance(tpl._env, sandbox.Sandbox)


def test_docxtpl_code_ports_by_changing_the_class(tmp_path):
    """The same lines of docxtpl code, with DocxTemplate or CompiledTemplate."""
    path = _pictures(tmp_path)
    sub = sub_document(tmp_path)
    stamp = png(tmp_path / "stamp.png", (220, 20, 20), (60, 60))
    out = {}
    for cls in (DocxTemplate, CompiledTemplate):
        tpl = cls(str(path))
        tpl.replace_pic("dummy.png", str(stamp))
        names = tpl.get_undeclared_template_variables()
        tpl.render({"org": tpl.new_subdoc(str(sub)) and "社区", "name": "王秀英"})
        tpl.save(str(tmp_path / f"{cls.__name__}.docx"))
        buffer = io.BytesIO()
        tpl.save(buffer)
        out[cls] = (names, (tmp_path / f"{cls.__name__}.docx").read_bytes(), buffer.getvalue())
    (names, ours, ours_buffer), (their_names, theirs, _) = out[CompiledTemplate], out[DocxTemplate]
    assert names == their_names
    assert all_text(ours) == all_text(theirs) == all_text(ours_buffer)
    assert pictures_shown(ours) == pictures_shown(theirs)
    unrendered = CompiledTemplate(str(path))
    unrendered.replace_pic("dummy.png", str(stamp))
    buffer = io.BytesIO()
    unrendered.save(buffer)     # docxtpl: the template with its pictures replaced
    assert pictures_shown(buffer.getvalue())["body"] == pictures_shown(ours)["body"]


def test_fallback_says_why_and_that_it_is_slower(tmp_path):
    tpl = CompiledTemplate(str(_defaults(tmp_path)), engine="docxtpl")
    assert not tpl.fast
    assert "docxtpl" in tpl.notice() and "slower" in tpl.notice()
    assert CompiledTemplate(str(_defaults(tmp_path))).notice() is None


def test_fallback_renders_in_the_sandbox(tmp_path):
    from letterpress.errors import TemplateProblemError

    doc = Document()
    doc.add_paragraph("{{ ''.__class__.__mro__ }}")
    doc.save(str(tmp_path / "bad.docx"))
    tpl = CompiledTemplate(str(tmp_path / "bad.docx"), engine="docxtpl")
    with pytest.raises(TemplateProblemError):
        tpl.render({})


def test_merged_letters_keep_each_letters_pictures_and_subdocs(tmp_path):
    """Per-letter replace_pic and sub-documents in letters.docx: each section shows its own."""
    path = _pictures(tmp_path)
    tpl = CompiledTemplate(str(path))
    colours = [(220, 20, 20), (20, 20, 220), (220, 20, 20)]
    expected = []
    with MergedDocument(tpl, tmp_path / "letters.docx") as merged:
        for n, colour in enumerate(colours):
            stamp = png(tmp_path / f"stamp{n}.png", colour, (60, 60))
            tpl.reset_replacements()
            tpl.replace_pic("dummy.png", str(stamp))
            merged.add(tpl.render({"org": "社区", "name": f"住户{n}"}))
            expected.append(hashlib.sha1(stamp.read_bytes()).hexdigest()[:12])
    data = (tmp_path / "letters.docx").read_bytes()
    assert_valid_docx(data)
    doc = Document(io.BytesIO(data))
    shown = []
    for section in doc.sections:
        part = section.header.part
        rid = re.search(r'r:embed="([^"]+)"', part.blob.decode()).group(1)
        shown.append(hashlib.sha1(part.related_parts[rid].blob).hexdigest()[:12])
    assert shown == expected
    body = pictures_shown(data)["body"]
    assert body == expected


def test_merged_letters_with_a_subdoc(tmp_path):
    feature = BY_NAME["subdoc"]
    tpl = CompiledTemplate(str(feature.build(tmp_path)))
    with MergedDocument(tpl, tmp_path / "letters.docx") as merged:
        for _ in range(2):
            merged.add(tpl.render(feature.context(tpl, tmp_path)))
    data = (tmp_path / "letters.docx").read_bytes()
    assert_valid_docx(data)
    doc = Document(io.BytesIO(data))
    assert [p.style.name for p in doc.paragraphs].count("List Number") == 6
    assert len(doc.inline_shapes) == 4
    for shape in doc.inline_shapes:   # every picture's relationship is defined
        rid = shape._inline.graphic.graphicData.pic.blipFill.blip.embed
        assert rid in doc.part.related_parts


# ---------------------------------------------------------------------------
# The pages LibreOffice draws


def _pages(pdf: Path, dpi: int = 60):
    import pypdfium2

    document = pypdfium2.PdfDocument(str(pdf))
    try:
        return [page.render(scale=dpi / 72).to_pil().convert("L") for page in document]
    finally:
        document.close()


def page_difference(a: Path, b: Path) -> float:
    """The share of pixels that differ visibly between the pages of two PDFs (1.0 when the
    page counts differ)."""
    from PIL import ImageChops

    ours, theirs = _pages(a), _pages(b)
    if len(ours) != len(theirs):
        return 1.0
    worst = 0.0
    for x, y in zip(ours, theirs):
        if x.size != y.size:
            return 1.0
        diff = ImageChops.difference(x, y).point(lambda v: 255 if v > 64 else 0)
        worst = max(worst, sum(diff.histogram()[255:]) / (x.size[0] * x.size[1]))
    return worst


def test_libreoffice_draws_the_same_pages(rendered, tmp_path):
    soffice = require_program("soffice", "libreoffice-writer")
    require_program("pdftoppm", "poppler-utils")   # LibreOffice's PDF export needs nothing more
    files = []
    for feature in (f for f in FEATURES if f.pixels):
        ours, theirs, _ = rendered[feature.name]
        for side, data in (("ours", ours), ("theirs", theirs)):
            path = tmp_path / f"{feature.name}-{side}.docx"
            path.write_bytes(data)
            files.append(path)
    control = tmp_path / "control.docx"    # the stand-in picture left in: the pages must differ
    control.write_bytes(render_ours(Feature(**{**BY_NAME["replace_pic"].__dict__,
                                                "prepare": None}), rendered["replace_pic"][2]))
    files.append(control)
    subprocess.run([soffice, f"-env:UserInstallation=file://{tmp_path / 'lo'}", "--headless",
                    "--convert-to", "pdf", "--outdir", str(tmp_path)] + [str(f) for f in files],
                   check=True, capture_output=True, timeout=300)
    for feature in (f for f in FEATURES if f.pixels):
        ours, theirs = (tmp_path / f"{feature.name}-{s}.pdf" for s in ("ours", "theirs"))
        pages = _pages(ours)
        assert pages and any(p.getextrema()[0] < 128 for p in pages), "a blank page"
        assert page_difference(ours, theirs) < 0.002, feature.name
    assert page_difference(tmp_path / "control.pdf", tmp_path / "replace_pic-ours.pdf") > 0.001


# ---------------------------------------------------------------------------
# The table README shows


def fidelity_table(folder: Path) -> str:
    import shutil

    rows = ["| feature | text | pictures | XML | pages LibreOffice draws |",
            "| --- | --- | --- | --- | --- |"]
    found = []
    for feature in FEATURES:
        sub = folder / feature.name
        sub.mkdir(parents=True, exist_ok=True)
        ours, theirs = render_ours(feature, sub), render_docxtpl(feature, sub)
        (folder / f"{feature.name}-ours.docx").write_bytes(ours)
        (folder / f"{feature.name}-theirs.docx").write_bytes(theirs)
        found.append((feature, "same" if all_text(ours) == all_text(theirs) else "DIFFERS",
                      "same" if pictures_shown(ours) == pictures_shown(theirs) else "DIFFERS",
                      "same" if same_xml(ours, theirs) else "differs"))
    soffice = shutil.which("soffice")
    drawn = [f for f in FEATURES if f.pixels]
    if soffice:
        subprocess.run([soffice, f"-env:UserInstallation=file://{folder / 'lo'}", "--headless",
                        "--convert-to", "pdf", "--outdir", str(folder)]
                       + [str(folder / f"{f.name}-{s}.docx") for f in drawn
                          for s in ("ours", "theirs")], check=True, capture_output=True)
    for feature, text, pics, xml in found:
        pages = "-"
        if soffice and feature.pixels:
            share = page_difference(folder / f"{feature.name}-ours.pdf",
                                    folder / f"{feature.name}-theirs.pdf")
            pages = f"{share:.2%} of pixels differ"
        rows.append(f"| {feature.label} | {text} | {pics} | {xml} | {pages} |")
    return "\n".join(rows)


if __name__ == "__main__":
    import tempfile

    import letterpress.docx.template as template_module

    template_module.FALLBACK_ON_ERROR = False
    with tempfile.TemporaryDirectory() as tmp:
        print(fidelity_table(Path(tmp)))
