"""The built-in letter templates and the demo recipient list.

The templates are rendered here with plain docxtpl, once per household of
``examples/recipients.xlsx``, and every letter is reopened with python-docx to check what a
resident would read. The letters letterpress itself writes from them are compared with
docxtpl's, text of every paragraph, table cell, header and footer
(``test_letterpress_writes_the_built_in_letters_as_docxtpl_does``).
"""
from __future__ import annotations

import datetime as dt
import importlib.util
import io
import re
import subprocess
import zipfile
from pathlib import Path

import docx
import jinja2
import openpyxl
import pytest
from conftest import ROOT, require_program
from docxtpl import DocxTemplate
from lxml import etree

TEMPLATES = ROOT / "templates"
EXAMPLES = ROOT / "examples"
DEMO_LIST = EXAMPLES / "recipients.xlsx"

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"

#: Header of the demo list -> canonical field (the subset of letterpress's aliases it uses).
CANONICAL = {
    "序号": "id", "姓名": "name", "称呼": "honorific", "小区": "compound", "楼栋": "building",
    "单元": "unit", "房号": "room", "联系电话": "phone", "人员类别": "category", "网格": "grid",
    "志愿者": "volunteer", "备注": "notes",
}
RECIPIENT_FIELDS = ("name", "honorific", "address", "compound", "building", "unit", "room",
                    "phone", "category", "grid", "volunteer", "package", "notes")
#: Exactly the fields the built-in templates use (templates/README.md says so).
TEMPLATE_FIELDS = {"name", "honorific", "volunteer", "category", "items", "org", "date",
                   "batch", "seq", "total"}
TEMPLATE_FIELDS_EN = TEMPLATE_FIELDS - {"honorific"}  # "Dear 王秀英奶奶" would not be English
CATEGORIES = {"独居老人", "空巢老人", "困难老人", "重症老人", "残障家庭"}
COMPOUNDS = ["沙湖小区", "电车宿舍", "九天公寓"]
MOBILE = re.compile(r"^1[3-9]\d{9}$")
LANDLINE = re.compile(r"^0\d{2,3}-?\d{7,8}$")

BATCH = "2020-02-24 青鱼嘴社区 爱心慰问"
ORG = "省民生服务厅机关党委"
DATES = {"zh": "2020年2月24日", "en": "24 February 2020"}
ILL_MARK = {"zh": "我们格外牵挂您的身体", "en": "We think of you especially"}


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

def read_sheet(path: Path = DEMO_LIST):
    """(worksheet, rows as header -> value) with merged cells filled from their top cell."""
    wb = openpyxl.load_workbook(path)
    ws = wb.worksheets[0]
    values = [list(r) for r in ws.iter_rows(values_only=True)]
    for rng in ws.merged_cells.ranges:
        top = values[rng.min_row - 1][rng.min_col - 1]
        for r in range(rng.min_row, rng.max_row + 1):
            for c in range(rng.min_col, rng.max_col + 1):
                values[r - 1][c - 1] = top
    header = [str(h) for h in values[0]]
    rows = [dict(zip(header, row)) for row in values[1:] if any(v is not None for v in row)]
    return ws, rows


def as_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def context(row: dict, seq: int, total: int, lang: str) -> dict:
    ctx = {header: as_text(value) for header, value in row.items()}
    for header, field in CANONICAL.items():
        ctx[field] = as_text(row.get(header))
    for field in RECIPIENT_FIELDS:
        ctx.setdefault(field, "")
    ctx["address"] = ctx["compound"] + ctx["building"] + ctx["unit"] + ctx["room"]
    package = ctx["package"] or "肉制品、蔬菜"
    ctx.update(
        seq=seq, total=total, batch=BATCH, org=ORG, date=DATES[lang], lang=lang,
        items=[i.strip() for i in re.split(r"[、,，;；]", package) if i.strip()],
    )
    return ctx


def render(lang: str, ctx: dict, out: Path) -> docx.Document:
    tpl = DocxTemplate(str(TEMPLATES / f"letter-{lang}.docx"))
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    tpl.render(ctx, jinja_env=env)
    tpl.save(str(out))
    return docx.Document(str(out))


def texts(document) -> dict:
    section = document.sections[0]
    return {
        "body": [p.text for p in document.paragraphs],
        "header": " ".join(p.text for p in section.header.paragraphs).strip(),
        "footer": " ".join(p.text for p in section.footer.paragraphs).strip(),
    }


def load_script(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------------------------
# the demo list
# --------------------------------------------------------------------------------------------

def test_demo_list_mirrors_the_real_round():
    ws, rows = read_sheet()
    assert len(rows) == 40
    assert [r["序号"] for r in rows] == list(range(1, 41))
    assert set(CANONICAL) <= set(rows[0])
    assert [r["小区"] for r in rows] == sorted((r["小区"] for r in rows), key=COMPOUNDS.index)
    assert {r["小区"] for r in rows} == set(COMPOUNDS)
    assert {r["人员类别"] for r in rows} == CATEGORIES
    assert {r["网格"] for r in rows} == {"第十网格"}
    assert {r["称呼"] for r in rows} <= {"奶奶", "爷爷", "阿姨", "叔叔"}
    assert all(r["姓名"] and 2 <= len(r["姓名"]) <= 3 for r in rows)
    assert len({r["姓名"] for r in rows}) == 40
    addresses = {(r["小区"], r["楼栋"], r["单元"], r["房号"]) for r in rows}
    assert len(addresses) == 40
    assert all(re.fullmatch(r"\d+栋", r["楼栋"]) and re.fullmatch(r"\d单元", r["单元"]) for r in rows)
    assert any(r["备注"] for r in rows) and any(r["备注"] is None for r in rows)
    # no summary row and no error values anywhere
    for row in ws.iter_rows(values_only=True):
        for value in row:
            assert not (isinstance(value, str) and (value.startswith("#") or value in {"合计", "总计", "小计"}))


def test_demo_volunteers_take_clusters_of_buildings():
    _, rows = read_sheet()
    volunteers = {}
    for r in rows:
        volunteers.setdefault(r["志愿者"], []).append(r)
    assert len(volunteers) == 8
    for name, theirs in volunteers.items():
        assert 4 <= len(theirs) <= 6, name
        assert len({r["小区"] for r in theirs}) == 1, f"{name} works in one compound"
    # clusters do not overlap: a building is served by one volunteer
    served = {}
    for r in rows:
        served.setdefault((r["小区"], r["楼栋"]), set()).add(r["志愿者"])
    assert all(len(v) == 1 for v in served.values())


def test_demo_sheet_looks_like_a_staff_sheet():
    ws, _ = read_sheet()
    compound_col = [c.value for c in ws[1]].index("小区") + 1
    merged = sorted((r.min_row, r.max_row) for r in ws.merged_cells.ranges
                    if r.min_col == r.max_col == compound_col)
    assert len(merged) == 3
    assert merged[0][0] == 2 and merged[-1][1] == ws.max_row
    assert all(a[1] + 1 == b[0] for a, b in zip(merged, merged[1:]))  # one run per compound
    assert all(cell.font.bold for cell in ws[1])
    assert all(ws.column_dimensions[cell.column_letter].width for cell in ws[1])


def test_demo_phones_are_valid_and_stored_like_excel_does():
    _, rows = read_sheet()
    phones = [r["联系电话"] for r in rows]
    numbers = [p for p in phones if isinstance(p, int)]
    text = [p for p in phones if isinstance(p, str)]
    assert len(numbers) + len(text) == 40
    assert 1 <= len(text) <= 2 and len(numbers) >= 38
    assert all(MOBILE.match(str(p)) for p in numbers)
    assert all(LANDLINE.match(p) for p in text)
    assert len(set(map(str, phones))) == 40


def test_demo_list_is_reproducible(tmp_path):
    module = load_script(EXAMPLES / "make_examples.py")
    out = module.write(tmp_path / "recipients.xlsx")
    assert out.read_bytes() == DEMO_LIST.read_bytes(), (
        "examples/recipients.xlsx is not what make_examples.py makes: run it again")


# --------------------------------------------------------------------------------------------
# the templates
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_demo_household_gets_a_proper_letter(lang, tmp_path):
    _, rows = read_sheet()
    ill_letters = 0
    for seq, row in enumerate(rows, start=1):
        ctx = context(row, seq, len(rows), lang)
        t = texts(render(lang, ctx, tmp_path / f"{seq}.docx"))
        body = t["body"]
        whole = "\n".join(body)
        name, honorific = ctx["name"], ctx["honorific"]
        if lang == "zh":
            assert body[0] == "爱不隔离\u3000抗疫必胜"
            assert f"尊敬的{name}{honorific}：" in body
            assert "肉制品、蔬菜" in whole
            assert t["footer"] == f"第 {seq} 封 / 共 {len(rows)} 封"
        else:
            assert body[0] == "Love Is Not Isolated"
            assert f"Dear {name}," in body
            assert "肉制品, 蔬菜" in whole
            assert t["footer"] == f"Letter {seq} of {len(rows)}"
        assert t["header"] == BATCH
        assert ctx["volunteer"] and f"{ctx['volunteer']}" in whole
        assert body[-2:] == [ORG, DATES[lang]]
        ill = ILL_MARK[lang] in whole
        assert ill == (ctx["category"] == "重症老人"), (seq, ctx["category"])
        ill_letters += ill
        # nothing of the template machinery, and nothing sensitive, is left on the page
        assert "{{" not in whole and "{%" not in whole and "}}" not in whole
        assert ctx["phone"] not in whole
        assert not any(c in whole for c in CATEGORIES)
        assert ctx["notes"] == "" or ctx["notes"] not in whole
    assert ill_letters == sum(r["人员类别"] == "重症老人" for r in rows) > 0


def test_english_letter_accepts_an_english_category(tmp_path):
    row = {"姓名": "Mary Chen", "人员类别": "Seriously ill", "志愿者": "Li Wei"}
    t = texts(render("en", context(row, 1, 1, "en"), tmp_path / "en.docx"))
    assert ILL_MARK["en"] in "\n".join(t["body"])
    assert "Today our volunteer Li Wei brings" in "\n".join(t["body"])


def test_empty_honorific_and_volunteer_read_naturally(tmp_path):
    row = {"姓名": "王秀英", "人员类别": "独居老人"}
    zh = texts(render("zh", context(row, 1, 1, "zh"), tmp_path / "zh.docx"))["body"]
    assert "尊敬的王秀英：" in zh
    assert any(p.startswith("今天，志愿者为您送上") for p in zh)
    en = texts(render("en", context(row, 1, 1, "en"), tmp_path / "en.docx"))["body"]
    assert any(p.startswith("Today our volunteer brings you") for p in en)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_values_are_inserted_literally(lang, tmp_path):
    row = {"姓名": "A&B <王> {{ x }}", "称呼": "奶奶", "人员类别": "重症老人", "志愿者": "李&张"}
    ctx = context(row, 3, 9, lang)
    ctx["org"] = "R&D <办公室>"
    t = texts(render(lang, ctx, tmp_path / "x.docx"))
    whole = "\n".join(t["body"])
    assert "A&B <王> {{ x }}" in whole and "R&D <办公室>" in whole and "李&张" in whole
    assert "&amp;" not in whole


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_templates_use_exactly_the_documented_fields(lang):
    tpl = DocxTemplate(str(TEMPLATES / f"letter-{lang}.docx"))
    used = tpl.get_undeclared_template_variables(jinja2.Environment())
    assert used == (TEMPLATE_FIELDS if lang == "zh" else TEMPLATE_FIELDS_EN)
    assert not used & {"code", "url", "qr", "phone"}


@pytest.mark.parametrize("missing", sorted(TEMPLATE_FIELDS))
def test_a_missing_field_is_an_error_not_a_blank(missing, tmp_path):
    ctx = context({"姓名": "王秀英", "人员类别": "重症老人"}, 1, 1, "zh")
    del ctx[missing]
    with pytest.raises(jinja2.UndefinedError):
        render("zh", ctx, tmp_path / "x.docx")


def _xml(lang: str, member: str):
    with zipfile.ZipFile(TEMPLATES / f"letter-{lang}.docx") as z:
        return etree.fromstring(z.read(member))


def _style(styles, style_id):
    found = styles.find(f"{W}style[@{W}styleId='{style_id}']")
    assert found is not None, style_id
    return found


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_fonts_are_set_for_chinese(lang):
    styles = _xml(lang, "word/styles.xml")
    defaults = styles.find(f"{W}docDefaults/{W}rPrDefault/{W}rPr")
    normal = _style(styles, "Normal").find(f"{W}rPr")
    for rpr in (defaults, normal):
        fonts = rpr.find(f"{W}rFonts")
        assert fonts.get(f"{W}eastAsia") == "宋体"
        assert fonts.get(f"{W}ascii") == fonts.get(f"{W}hAnsi") == "Times New Roman"
        assert rpr.find(f"{W}lang").get(f"{W}eastAsia") == "zh-CN"
    title = _style(styles, "LetterTitle").find(f"{W}rPr/{W}rFonts")
    assert title.get(f"{W}eastAsia") == "黑体"
    # theme fonts would override the named fonts in Word
    for fonts in styles.iter(f"{W}rFonts"):
        assert not any(k.endswith("Theme") or k.endswith("theme") for k in fonts.attrib)
    size = int(normal.find(f"{W}sz").get(f"{W}val")) / 2
    assert 12 <= size <= 14
    if lang == "zh":
        spacing = _style(styles, "Normal").find(f"{W}pPr/{W}spacing")
        assert spacing.get(f"{W}line") == "360" and spacing.get(f"{W}lineRule") == "auto"
        ind = _style(styles, "LetterBody").find(f"{W}pPr/{W}ind")
        assert ind.get(f"{W}firstLineChars") == "200"


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_page_is_a4_with_normal_margins(lang):
    section = docx.Document(str(TEMPLATES / f"letter-{lang}.docx")).sections[0]
    assert abs(section.page_width.mm - 210) < 0.5 and abs(section.page_height.mm - 297) < 0.5
    assert abs(section.top_margin.cm - 2.54) < 0.05 and abs(section.left_margin.cm - 3.17) < 0.05


def test_rendered_letter_keeps_the_styles(tmp_path):
    ctx = context({"姓名": "王秀英", "称呼": "奶奶", "人员类别": "重症老人"}, 1, 1, "zh")
    document = render("zh", ctx, tmp_path / "x.docx")
    styles = [p.style.name for p in document.paragraphs]
    assert styles[:3] == ["信函标题", "信函副标题", "信函称呼"]
    assert styles[-2:] == ["信函落款", "信函落款"]
    assert "模板指令" not in styles  # the {%p %} lines vanish from the letter
    sender = document.paragraphs[-1].style.paragraph_format
    assert sender.alignment == docx.enum.text.WD_ALIGN_PARAGRAPH.RIGHT


def test_templates_are_what_the_script_makes(tmp_path):
    module = load_script(TEMPLATES / "make_templates.py")
    for path in module.write(tmp_path):
        assert path.read_bytes() == (TEMPLATES / path.name).read_bytes(), (
            f"templates/{path.name} is not what make_templates.py makes: run it again")


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_letter_fits_on_one_page(lang, tmp_path):
    import pypdf

    soffice = require_program("soffice", "libreoffice-writer")
    _, rows = read_sheet()
    longest = max(rows, key=lambda r: len(r["姓名"]) + len(r["志愿者"]))
    plain = dict(longest, 人员类别="独居老人")
    ill = dict(longest, 人员类别="重症老人")
    render(lang, context(plain, 40, 40, lang), tmp_path / "plain.docx")
    render(lang, context(ill, 40, 40, lang), tmp_path / "ill.docx")
    subprocess.run(
        [soffice, f"-env:UserInstallation=file://{tmp_path / 'lo'}", "--headless",
         "--convert-to", "pdf", "--outdir", str(tmp_path),
         str(tmp_path / "plain.docx"), str(tmp_path / "ill.docx")],
        check=True, capture_output=True, timeout=180,
    )
    assert len(pypdf.PdfReader(tmp_path / "plain.pdf").pages) == 1
    assert len(pypdf.PdfReader(tmp_path / "ill.pdf").pages) == 1


def test_readme_lists_every_field():
    readme = (TEMPLATES / "README.md").read_text(encoding="utf-8")
    fields = set(RECIPIENT_FIELDS) | {"id", "seq", "total", "batch", "org", "date", "items",
                                      "lang", "code", "url", "qr"}
    missing = [f for f in sorted(fields) if f"{{{{ {f} }}}}" not in readme]
    assert not missing
    for tag in ("{%p if", "{%p endif %}", "{%p for", "{%tr for", "{{ 姓名 }}", "[context]",
                "letterpress check"):
        assert tag in readme


def every_text(document) -> dict:
    """What python-docx reads: every paragraph, every table cell (nested tables too), and
    every header and footer of every section (first-page and even-page ones included)."""
    def cells(tables):
        return [[[c.text, cells(c.tables)] for c in row.cells] for t in tables for row in t.rows]

    parts = {}
    for n, s in enumerate(document.sections):
        for kind in ("header", "first_page_header", "even_page_header",
                     "footer", "first_page_footer", "even_page_footer"):
            part = getattr(s, kind)
            if not part.is_linked_to_previous:
                parts[f"{n}.{kind}"] = ([p.text for p in part.paragraphs], cells(part.tables))
    return {"paragraphs": [p.text for p in document.paragraphs],
            "tables": cells(document.tables), "parts": parts}


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_letterpress_writes_the_built_in_letters_as_docxtpl_does(lang, tmp_path):
    from letterpress import config
    from letterpress.docx.template import CompiledTemplate
    from letterpress.pipeline import build as batch
    from letterpress.pipeline import letters as letters_mod

    settings = config.load(None, recipients=DEMO_LIST, template=lang, title=BATCH, org=ORG,
                           date="2020-02-24", out=tmp_path / "out")
    result = batch.letters(settings)
    checked = batch.check(settings)
    template = str(checked.template_path)
    options = letters_mod.LetterOptions(template=template, batch=BATCH, org=ORG,
                                        date=dt.date(2020, 2, 24), lang=lang,
                                        total=len(checked.households))
    tpl = CompiledTemplate(template)
    compared = 0
    for household in checked.households:
        ctx = letters_mod.household_context(tpl, options, options.base_context(), household)
        reference = DocxTemplate(template)
        reference.render(dict(ctx), jinja_env=jinja2.Environment(
            autoescape=True, undefined=jinja2.StrictUndefined))
        theirs = io.BytesIO()
        reference.save(theirs)
        ours = result.out / "letters" / letters_mod.letter_filename(household, len(checked.households))
        expected = every_text(docx.Document(theirs))
        assert every_text(docx.Document(str(ours))) == expected, ours.name
        assert any(household.name in p for p in expected["paragraphs"])
        assert expected["parts"], "the letters have a header and a footer"
        compared += 1
    assert compared == 40


# --------------------------------------------------------------------------------------------
# Large print (zh-large, en-large)

LARGE = ["zh-large", "en-large"]


def _resolved_size(styles, style_id) -> float:
    """A paragraph style's font size in pt, following basedOn to the document defaults."""
    while style_id:
        style = _style(styles, style_id)
        sz = style.find(f"{W}rPr/{W}sz")
        if sz is not None:
            return int(sz.get(f"{W}val")) / 2
        based = style.find(f"{W}basedOn")
        style_id = based.get(f"{W}val") if based is not None else None
    sz = styles.find(f"{W}docDefaults/{W}rPrDefault/{W}rPr/{W}sz")
    return int(sz.get(f"{W}val")) / 2


@pytest.mark.parametrize("variant", LARGE)
def test_large_print_is_large_spaced_and_black(variant):
    styles = _xml(variant, "word/styles.xml")
    for style_id in ("Normal", "LetterBody", "LetterGreeting", "LetterSender"):
        assert _resolved_size(styles, style_id) >= 18, style_id
    assert _resolved_size(styles, "LetterTitle") > 18
    assert _resolved_size(styles, "Header") >= 14 and _resolved_size(styles, "Footer") >= 14
    spacing = _style(styles, "Normal").find(f"{W}pPr/{W}spacing")
    assert spacing.get(f"{W}line") == "360" and spacing.get(f"{W}lineRule") == "auto"
    colours = {c.get(f"{W}val") for c in styles.iter(f"{W}color")}
    assert colours <= {"000000", "auto"}        # high contrast: no grey text anywhere
    document = _xml(variant, "word/document.xml")
    assert not list(document.iter(f"{W}color")) and not list(document.iter(f"{W}sz"))
    body = _style(styles, "LetterBody").find(f"{W}pPr/{W}keepLines")
    assert body is not None                      # a paragraph never splits across pages


@pytest.mark.parametrize("variant", LARGE)
def test_large_print_uses_the_same_fields_and_wording(variant):
    plain = DocxTemplate(str(TEMPLATES / f"letter-{variant[:2]}.docx"))
    large = DocxTemplate(str(TEMPLATES / f"letter-{variant}.docx"))
    assert large.get_undeclared_template_variables() == \
        plain.get_undeclared_template_variables()
    ctx = context({"姓名": "王秀英", "称呼": "奶奶", "人员类别": "重症老人"}, 1, 1, variant[:2])
    texts = []
    for name in (variant[:2], variant):
        tpl = DocxTemplate(str(TEMPLATES / f"letter-{name}.docx"))
        tpl.render(ctx, jinja_env=jinja2.Environment(autoescape=True,
                                                     undefined=jinja2.StrictUndefined))
        texts.append([p.text for p in tpl.docx.paragraphs])
    assert texts[0] == texts[1]


def test_large_print_letters_page_cleanly(tmp_path):
    """The 《爱不隔离 抗疫必胜》 letter in large print: one page in Chinese; where a letter needs
    a second page (the extra paragraph for the seriously ill, or English), it turns between
    paragraphs and the closing wish stays with the signature."""
    import pypdf

    soffice = require_program("soffice", "libreoffice-writer")
    _, rows = read_sheet()
    longest = max(rows, key=lambda r: len(r["姓名"]) + len(r["志愿者"]))
    files = []
    for variant in LARGE:
        for kind, category in (("plain", "独居老人"), ("ill", "重症老人")):
            path = tmp_path / f"{variant}-{kind}.docx"
            render(variant, context(dict(longest, 人员类别=category), 40, 40, variant[:2]), path)
            files.append(path)
    subprocess.run([soffice, f"-env:UserInstallation=file://{tmp_path / 'lo'}", "--headless",
                    "--convert-to", "pdf", "--outdir", str(tmp_path)] + [str(f) for f in files],
                   check=True, capture_output=True, timeout=240)
    pages = {f.stem: pypdf.PdfReader(tmp_path / f"{f.stem}.pdf").pages for f in files}
    assert len(pages["zh-large-plain"]) == 1
    for name, found in pages.items():
        assert len(found) <= 2, name
        last = found[-1].extract_text()
        sender = ORG
        assert sender in last, name                         # the signature ends the letter
        if len(found) == 2:                                   # ... with more than itself
            lines = [line for line in last.splitlines() if line.strip()]
            assert len(lines) >= 4, name
