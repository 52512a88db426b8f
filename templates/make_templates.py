"""Generate the built-in letter templates ``letter-zh.docx``, ``letter-en.docx`` and their
large-print versions ``letter-zh-large.docx`` and ``letter-en-large.docx``.

The two Word files in this folder are made by this script, so that their wording, fonts and
layout can be reviewed here as text and regenerated at will::

    python templates/make_templates.py            # writes templates/letter-*.docx
    python templates/make_templates.py OUT_DIR    # writes them somewhere else

The output is byte-for-byte reproducible (fixed document dates and zip timestamps), so a
changed template shows up in review only when this script changed.

The templates use docxtpl (Jinja) tags. Fields they use, all always provided by letterpress:
``name``, ``honorific``, ``volunteer``, ``category``, ``items``, ``org``, ``date``, ``batch``,
``seq``, ``total``. ``category`` only decides whether the paragraph for seriously ill households
appears; it is never printed. See README.md in this folder for every field a template may use.
"""
from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

from docx import Document
from docx.enum.style import WD_STYLE_TYPE
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_LINE_SPACING
from docx.oxml import OxmlElement
from docx.oxml.ns import nsmap, qn
from docx.shared import Cm, Mm, Pt, RGBColor

HERE = Path(__file__).resolve().parent

#: Fixed timestamp for document properties and zip members (the day of the first round).
STAMP = (2020, 2, 24, 0, 0, 0)
STAMP_W3C = "2020-02-24T00:00:00Z"

#: Condition for the paragraph only seriously ill households receive.
ILL_ZH = '{%p if category == "重症老人" %}'
ILL_EN = '{%p if category == "重症老人" or category|lower == "seriously ill" %}'
ENDIF = "{%p endif %}"

# --------------------------------------------------------------------------------------------
# The wording. One string per paragraph; every tag stays inside one paragraph (and one run).
# --------------------------------------------------------------------------------------------

ZH = {
    "title": "爱不隔离\u3000抗疫必胜",
    "subtitle": "——致社区居民朋友的一封信",
    "greeting": "尊敬的{{ name }}{{ honorific }}：",
    "body": [
        "您好！新冠肺炎疫情发生以来，您和家人积极配合社区防控，坚持居家、减少外出，"
        "为守护社区平安付出了努力。在此，我们向您和家人致以诚挚的问候和衷心的感谢！",
        "疫情当前，{{ org }}全体同志时刻把社区居民放在心上。我们组建志愿服务队下沉社区，"
        "与奋战在一线的社区工作者并肩作战，值守小区、电话问候、配送物资，尽心尽力为大家"
        "解决生活中的困难，守护大家的身体健康。",
        "今天，志愿者{{ volunteer }}为您送上一份生活物资：{{ items|join(\"、\") }}。"
        "物资虽轻，情谊深重，这是我们的一点心意，请您收下。",
    ],
    "ill": "我们格外牵挂您的身体。请您遵照医嘱按时服药、安心静养；常用药品快用完时，"
    "请提前告诉网格员或志愿者，我们会帮您联系购药和就医。身体如有不适，请及时告诉我们，"
    "我们会第一时间联系社区医生；遇到紧急情况，请立即拨打120急救电话。",
    "after": [
        "生活上有任何困难和需要，请随时拨打社区服务电话，或告诉网格员和上门的志愿者，"
        "我们一定尽快回应、尽力解决。请您安心居家，做好个人防护：少出门、不聚集，"
        "出门戴口罩，回家勤洗手，室内常通风。",
        "寒冬终将过去，春天已经到来。爱不隔离，我们始终和您在一起；众志成城，"
        "我们一定能打赢这场疫情防控阻击战！",
        "衷心祝愿您和家人身体健康、平安顺遂！",
    ],
    "sender": ["{{ org }}", "{{ date }}"],
    "header": "{{ batch }}",
    "footer": "第 {{ seq }} 封 / 共 {{ total }} 封",
}

EN = {
    "title": "Love Is Not Isolated",
    "subtitle": "Together we will win against the epidemic",
    "greeting": "Dear {{ name }},",
    "body": [
        "We hope you and your family are keeping well. Since the outbreak began, you have "
        "stayed at home and followed the community\u2019s guidance, and in doing so you have "
        "helped to keep all your neighbours safe. We send you our warm regards and our "
        "sincere thanks.",
        "In these difficult days, everyone at {{ org }} keeps the residents of this community "
        "in their hearts. Our volunteers stand with the community workers on the front line, "
        "keeping watch at the compounds, phoning residents and delivering supplies. We will do "
        "all we can to solve your difficulties and to protect your health.",
        "Today our volunteer{% if volunteer %} {{ volunteer }}{% endif %} brings you a package "
        "of daily supplies: {{ items|join(\", \") }}. It is a small gift, but it carries all "
        "our care, and we hope you will accept it.",
    ],
    "ill": "We think of you especially at this time. Please take your medicines as your doctor "
    "has prescribed and rest well. If your regular medicines are running low, tell your grid "
    "worker or volunteer in good time and we will help you obtain them and see a doctor. If you "
    "feel unwell, let us know and we will contact the community doctor at once; in an "
    "emergency, call 120 immediately.",
    "after": [
        "If you need anything at all, call the community service line or tell your grid worker "
        "or the volunteer at your door, and we will answer as quickly as we can. Please stay "
        "safe at home: go out as little as possible, avoid gatherings, wear a mask when you do "
        "go out, wash your hands when you come home and open the windows often.",
        "Winter will pass, and spring is already on its way. Love is not isolated: we are with "
        "you, and together we will win.",
        "With our warmest wishes for the health and safety of you and your family,",
    ],
    "sender": ["{{ org }}", "{{ date }}"],
    "header": "{{ batch }}",
    "footer": "Letter {{ seq }} of {{ total }}",
}

# Typography per language: (latin font, east-asian font, size in pt, line spacing multiple).
LOOK = {
    "zh": {
        "lang": "zh-CN", "latin": "Times New Roman", "song": "宋体", "hei": "黑体", "kai": "楷体",
        "body_pt": 14, "line": 1.5, "title_pt": 22, "subtitle_pt": 15, "indent_chars": 2,
        "after_pt": 0, "justify": True,
    },
    "en": {
        "lang": "en-GB", "latin": "Times New Roman", "song": "宋体", "hei": "黑体", "kai": "楷体",
        "body_pt": 13, "line": 1.25, "title_pt": 22, "subtitle_pt": 14, "indent_chars": 0,
        "after_pt": 6, "justify": False,
    },
}

#: Large print for elderly readers: 18 pt body text, 1.5 line spacing, everything black on
#: white (no grey), narrower margins for more words a line; paragraphs are never split
#: across pages, so a letter that needs a second page turns it cleanly between paragraphs.
LARGE = {"body_pt": 18, "line": 1.5, "title_pt": 26, "subtitle_pt": 20, "header_pt": 14,
         "grey": False, "margin_cm": (1.8, 2.0), "header_cm": 1.0, "keep_together": True, "subtitle_after_pt": 8,
         "sender_before_pt": 12}
for _lang in ("zh", "en"):
    LOOK[f"{_lang}-large"] = {**LOOK[_lang], **LARGE}
LOOK["en-large"]["after_pt"] = 6
for _look in (LOOK["zh"], LOOK["en"]):
    _look.update(header_pt=9, grey=True, margin_cm=(2.54, 3.17), header_cm=1.5,
                 keep_together=False,
                 subtitle_after_pt=18, sender_before_pt=24)
VARIANTS = ("zh", "en", "zh-large", "en-large")

#: Paragraph styles of the letter: style id -> the name staff see in Word's style list.
STYLE_NAMES = {
    "zh": {"LetterTitle": "信函标题", "LetterSubtitle": "信函副标题", "LetterGreeting": "信函称呼",
           "LetterBody": "信函正文", "LetterSender": "信函落款", "TemplateTag": "模板指令"},
    "en": {"LetterTitle": "Letter Title", "LetterSubtitle": "Letter Subtitle",
           "LetterGreeting": "Letter Greeting", "LetterBody": "Letter Body",
           "LetterSender": "Letter Sender", "TemplateTag": "Template Tag"},
}

# Styles kept from python-docx's default template (the rest are dropped to keep the file lean;
# Word re-creates any built-in style the moment someone uses it).
KEEP_STYLES = {
    "Normal", "DefaultParagraphFont", "TableNormal", "NoList", "TableGrid", "ListParagraph",
    "Header", "HeaderChar", "Footer", "FooterChar",
}


# --------------------------------------------------------------------------------------------
# XML helpers
# --------------------------------------------------------------------------------------------

def _child(parent, tag: str, first: bool = False):
    """The child ``tag`` of ``parent``, created if missing."""
    el = parent.find(qn(tag))
    if el is None:
        el = OxmlElement(tag)
        if first:
            parent.insert(0, el)
        else:
            parent.append(el)
    return el


def _fonts(rpr, latin: str, east_asia: str) -> None:
    """Set explicit fonts on a ``w:rPr``: Latin text in ``latin``, Chinese in ``east_asia``.

    Theme font attributes are removed, because Word lets them override the named fonts.
    """
    rfonts = _child(rpr, "w:rFonts", first=True)
    for attr in ("w:asciiTheme", "w:hAnsiTheme", "w:eastAsiaTheme", "w:cstheme"):
        rfonts.attrib.pop(qn(attr), None)
    rfonts.set(qn("w:ascii"), latin)
    rfonts.set(qn("w:hAnsi"), latin)
    rfonts.set(qn("w:cs"), latin)
    rfonts.set(qn("w:eastAsia"), east_asia)
    rfonts.set(qn("w:hint"), "eastAsia")


def _lang(rpr, lang: str) -> None:
    el = _child(rpr, "w:lang")
    el.set(qn("w:val"), "en-US" if lang == "zh-CN" else lang)
    el.set(qn("w:eastAsia"), "zh-CN")
    el.set(qn("w:bidi"), "ar-SA")


def _first_line_chars(style, chars: int, size_pt: float) -> None:
    """First-line indent of ``chars`` characters (Word's 首行缩进 2 字符), with the same
    distance in twips for programs that ignore the character unit."""
    ind = style.element.get_or_add_pPr().get_or_add_ind()  # keeps the schema's element order
    ind.set(qn("w:firstLineChars"), str(chars * 100))
    ind.set(qn("w:firstLine"), str(int(chars * size_pt * 20)))


def _strip_theme_fonts(styles_el) -> None:
    for rfonts in styles_el.iter(qn("w:rFonts")):
        for attr in ("w:asciiTheme", "w:hAnsiTheme", "w:eastAsiaTheme", "w:cstheme"):
            rfonts.attrib.pop(qn(attr), None)


# --------------------------------------------------------------------------------------------
# Building one template
# --------------------------------------------------------------------------------------------

def _setup_styles(doc, variant: str) -> None:
    look, lang = LOOK[variant], variant[:2]
    styles_el = doc.styles.element
    for style in list(styles_el.findall(qn("w:style"))):
        if style.get(qn("w:styleId")) not in KEEP_STYLES:
            styles_el.remove(style)
    _strip_theme_fonts(styles_el)

    # Document defaults: what any text without a style of its own falls back to.
    defaults = styles_el.find(qn("w:docDefaults"))
    rpr = defaults.find(qn("w:rPrDefault")).find(qn("w:rPr"))
    _fonts(rpr, look["latin"], look["song"])
    _child(rpr, "w:sz").set(qn("w:val"), str(look["body_pt"] * 2))
    _child(rpr, "w:szCs").set(qn("w:val"), str(look["body_pt"] * 2))
    _lang(rpr, look["lang"])
    ppr = defaults.find(qn("w:pPrDefault")).find(qn("w:pPr"))
    spacing = _child(ppr, "w:spacing")
    spacing.set(qn("w:after"), "0")
    spacing.set(qn("w:line"), str(int(240 * look["line"])))
    spacing.set(qn("w:lineRule"), "auto")

    normal = doc.styles["Normal"]
    _fonts(normal.element.get_or_add_rPr(), look["latin"], look["song"])
    _lang(normal.element.get_or_add_rPr(), look["lang"])
    normal.font.size = Pt(look["body_pt"])
    pf = normal.paragraph_format
    pf.line_spacing_rule = WD_LINE_SPACING.MULTIPLE
    pf.line_spacing = look["line"]
    pf.space_before = Pt(0)
    pf.space_after = Pt(0)
    pf.widow_control = True

    names = STYLE_NAMES[lang]

    def add(style_id: str):
        style = doc.styles.add_style(names[style_id], WD_STYLE_TYPE.PARAGRAPH)
        style.element.set(qn("w:styleId"), style_id)
        style.base_style = normal
        style.quick_style = True
        return style

    title = add("LetterTitle")
    _fonts(title.element.get_or_add_rPr(), look["latin"], look["hei"])
    title.font.size = Pt(look["title_pt"])
    title.font.bold = lang == "en"
    tf = title.paragraph_format
    tf.alignment = WD_ALIGN_PARAGRAPH.CENTER
    tf.line_spacing = 1.2
    tf.space_before = Pt(6)
    tf.space_after = Pt(4)
    tf.keep_with_next = True

    subtitle = add("LetterSubtitle")
    _fonts(subtitle.element.get_or_add_rPr(), look["latin"], look["kai"])
    subtitle.font.size = Pt(look["subtitle_pt"])
    subtitle.font.italic = lang == "en"
    sf = subtitle.paragraph_format
    sf.alignment = WD_ALIGN_PARAGRAPH.CENTER
    sf.space_after = Pt(look["subtitle_after_pt"])
    sf.keep_with_next = True

    greeting = add("LetterGreeting")
    greeting.paragraph_format.space_after = Pt(look["after_pt"])
    greeting.paragraph_format.keep_with_next = True

    body = add("LetterBody")
    bf = body.paragraph_format
    if look["keep_together"]:
        bf.keep_together = True
    if look["justify"]:
        bf.alignment = WD_ALIGN_PARAGRAPH.JUSTIFY
    bf.space_after = Pt(look["after_pt"])
    if look["indent_chars"]:
        _first_line_chars(body, look["indent_chars"], look["body_pt"])

    sender = add("LetterSender")
    sender.paragraph_format.alignment = WD_ALIGN_PARAGRAPH.RIGHT
    sender.paragraph_format.keep_with_next = True
    sender.paragraph_format.keep_together = True

    # Lines holding only a {%p ... %} tag: they vanish from every letter; grey and small in the
    # template so that staff see them as instructions rather than text.
    tag = add("TemplateTag")
    tag.font.size = Pt(10)
    tag.font.color.rgb = RGBColor(0x80, 0x80, 0x80) if look["grey"] else RGBColor(0, 0, 0)
    tag.paragraph_format.line_spacing = 1.0

    for sid in ("Header", "Footer"):
        st = doc.styles[sid]
        st.font.size = Pt(look["header_pt"])
        st.font.color.rgb = RGBColor(0x70, 0x70, 0x70) if look["grey"] else RGBColor(0, 0, 0)
        st.paragraph_format.line_spacing = 1.0
        st.paragraph_format.alignment = WD_ALIGN_PARAGRAPH.CENTER
        # Tab stops sized for the A4 text width.
        tabs = st.element.pPr.find(qn("w:tabs"))
        if tabs is not None:
            st.element.pPr.remove(tabs)


def _setup_page(doc, variant: str) -> None:
    lang, margin = variant[:2], LOOK[variant]["margin_cm"]
    section = doc.sections[0]
    section.page_width = Mm(210)
    section.page_height = Mm(297)
    section.top_margin = section.bottom_margin = Cm(margin[0])
    section.left_margin = section.right_margin = Cm(margin[1])
    section.header_distance = section.footer_distance = Cm(LOOK[variant]["header_cm"])
    grid = section._sectPr.find(qn("w:docGrid"))
    if grid is not None:  # a line pitch without a grid type: no snapping of lines to a grid
        grid.attrib.pop(qn("w:type"), None)
        grid.set(qn("w:linePitch"), "312")

    section.header.is_linked_to_previous = False
    section.footer.is_linked_to_previous = False
    hp = section.header.paragraphs[0]
    hp.style = doc.styles["Header"]
    hp.alignment = WD_ALIGN_PARAGRAPH.RIGHT
    hp.add_run(ZH["header"] if lang == "zh" else EN["header"])
    fp = section.footer.paragraphs[0]
    fp.style = doc.styles["Footer"]
    fp.add_run(ZH["footer"] if lang == "zh" else EN["footer"])


def _setup_settings(doc, lang: str) -> None:
    settings = doc.settings.element
    lang_el = settings.find(qn("w:themeFontLang"))
    if lang_el is None:
        lang_el = OxmlElement("w:themeFontLang")
        # schema order: themeFontLang comes after the compatibility-related elements; Word
        # accepts it before w:clrSchemeMapping, which python-docx's settings.xml has.
        anchor = settings.find(qn("w:clrSchemeMapping"))
        if anchor is not None:
            anchor.addprevious(lang_el)
        else:
            settings.append(lang_el)
    lang_el.set(qn("w:val"), "en-US" if lang == "zh" else "en-GB")
    lang_el.set(qn("w:eastAsia"), "zh-CN")


def _drop_extras(doc) -> None:
    """Remove parts of python-docx's default template that a letter does not need: a stale
    thumbnail, an old duplicate of the styles, and a bibliography placeholder."""
    drop = (
        "/metadata/thumbnail",
        "/stylesWithEffects",
        "/relationships/customXml",
    )
    for rels in (doc.part.package.rels, doc.part.rels):
        for rid in [r for r, rel in rels.items() if rel.reltype.endswith(drop)]:
            del rels[rid]


#: The fonts the letters use, for word/fontTable.xml: (name, alternative name, panose, charset,
#: family, pitch). The alternative names let programs without Chinese font names find them.
FONTS = [
    ("Times New Roman", None, "02020603050405020304", "00", "roman", "variable"),
    ("宋体", "SimSun", "02010600030101010101", "86", "auto", "variable"),
    ("黑体", "SimHei", "02010609060101010101", "86", "modern", "fixed"),
    ("楷体", "KaiTi", "02010609060101010101", "86", "modern", "fixed"),
]


def _font_table(doc) -> None:
    """Replace the default template's font table (which lists Japanese fonts) by ours."""
    w = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    parts = ['<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n', f'<w:fonts xmlns:w="{w}">']
    for name, alt, panose, charset, family, pitch in FONTS:
        parts.append(f'<w:font w:name="{name}">')
        if alt:
            parts.append(f'<w:altName w:val="{alt}"/>')
        parts.append(f'<w:panose1 w:val="{panose}"/><w:charset w:val="{charset}"/>'
                     f'<w:family w:val="{family}"/><w:pitch w:val="{pitch}"/></w:font>')
    parts.append("</w:fonts>")
    for rel in doc.part.rels.values():
        if rel.reltype.endswith("/fontTable"):
            rel.target_part._blob = "".join(parts).encode("utf-8")


def _properties(doc, variant: str) -> None:
    import datetime as dt

    cp = doc.core_properties
    stamp = dt.datetime(*STAMP)
    lang = variant[:2]
    cp.title = ZH["title"] if lang == "zh" else EN["title"]
    cp.subject = "letterpress built-in letter template"
    cp.author = "letterpress"
    cp.last_modified_by = "letterpress"
    cp.comments = "Generated by templates/make_templates.py; fields in templates/README.md"
    cp.keywords = "letterpress"
    cp.revision = 1
    cp.created = stamp
    cp.modified = stamp
    cp.language = LOOK[variant]["lang"]


def _para(doc, text: str, style_id: str):
    lang = "zh" if doc.core_properties.language == "zh-CN" else "en"
    p = doc.add_paragraph(style=STYLE_NAMES[lang][style_id])
    p.add_run(text)
    return p


def build(variant: str):
    """The template ``variant`` ("zh", "en", "zh-large", "en-large") as a python-docx
    Document."""
    lang = variant[:2]
    words = ZH if lang == "zh" else EN
    # python-docx's own namespace for core properties (docxcompose, once imported, maps the
    # prefix to another one, and the file would differ)
    nsmap["cp"] = "http://schemas.openxmlformats.org/package/2006/metadata/core-properties"
    doc = Document()
    _drop_extras(doc)
    _setup_styles(doc, variant)
    _setup_page(doc, variant)
    _setup_settings(doc, lang)
    _font_table(doc)
    _properties(doc, variant)

    body = doc.element.body
    for p in list(body.findall(qn("w:p"))):
        body.remove(p)

    _para(doc, words["title"], "LetterTitle")
    _para(doc, words["subtitle"], "LetterSubtitle")
    _para(doc, words["greeting"], "LetterGreeting")
    for text in words["body"]:
        _para(doc, text, "LetterBody")
    _para(doc, ILL_ZH if lang == "zh" else ILL_EN, "TemplateTag")
    _para(doc, words["ill"], "LetterBody")
    _para(doc, ENDIF, "TemplateTag")
    for text in words["after"]:
        last = _para(doc, text, "LetterBody")
    last.paragraph_format.keep_with_next = True  # the closing wish stays with the signature
    first = _para(doc, words["sender"][0], "LetterSender")
    first.paragraph_format.space_before = Pt(LOOK[variant]["sender_before_pt"])
    _para(doc, words["sender"][1], "LetterSender")
    return doc


def _reproducible(data: bytes) -> bytes:
    """Rewrite a .docx zip with fixed timestamps and a fixed member order."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        names = src.namelist()
        order = ["[Content_Types].xml"] + sorted(n for n in names if n != "[Content_Types].xml")
        for name in order:
            info = zipfile.ZipInfo(name, date_time=STAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            dst.writestr(info, src.read(name), compresslevel=9)
    return out.getvalue()


def write(out_dir: Path) -> list[Path]:
    """Write letter-zh.docx, letter-en.docx and the large-print letters into ``out_dir``;
    return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for variant in VARIANTS:
        buf = io.BytesIO()
        build(variant).save(buf)
        path = out_dir / f"letter-{variant}.docx"
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(_reproducible(buf.getvalue()))
        tmp.replace(path)
        paths.append(path)
    return paths


def main(argv: list[str]) -> int:
    out_dir = Path(argv[1]) if len(argv) > 1 else HERE
    for path in write(out_dir):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
