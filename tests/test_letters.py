import datetime as dt

from letterpress.models import Household, Recipient
from letterpress.pipeline import letters


def test_dates_are_written_for_the_language():
    d = dt.date(2020, 2, 24)
    assert letters.format_date(d, "zh") == "2020年2月24日"
    assert letters.format_date(d, "en") == "24 February 2020"


def test_items_split_on_chinese_and_latin_separators():
    assert letters.split_items("肉制品、蔬菜；口罩, 手套") == ["肉制品", "蔬菜", "口罩", "手套"]
    assert letters.split_items("") == []


def test_letter_file_names_are_numbered_and_safe():
    h = Household(seq=7, recipient=Recipient(row=8, id="7", name="王/秀英"))
    assert letters.letter_filename(h, 40) == "0007-王_秀英.docx"
    assert letters.letter_filename(h, 12000) == "00007-王_秀英.docx"


def _r(row, **kw):
    return Recipient(row=row, id=str(row), name="张三", address="沙湖小区1栋", **kw)


def test_unknown_field_names_the_place_and_suggests():
    variables = {"nmae": ["paragraph 3: 尊敬的{{ nmae }}"], "name": ["paragraph 2"]}
    problems = letters.check_template(variables, [_r(2)], ["姓名"], [], "letter.docx", False)
    assert len(problems) == 1
    p = problems[0]
    assert p.is_error and p.code == "unknown_field"
    assert p.where.part == "paragraph 3 (“尊敬的{{ nmae }}”)"
    assert "{{ name }}" in p.hint


def test_original_headers_and_context_values_count_as_provided():
    variables = {"姓名": ["paragraph 1"], "hotline": ["paragraph 4"], "seq": ["footer"]}
    r = Recipient(row=2, id="1", name="张三", address="沙湖小区1栋", columns={"姓名": "张三"})
    problems = letters.check_template(variables, [r], ["姓名"], ["hotline"], "t.docx", False)
    assert problems == []


def test_ledger_fields_need_build():
    variables = {"code": ["footer 1, paragraph 1"]}
    problems = letters.check_template(variables, [_r(2)], [], [], "t.docx", with_codes=False)
    assert [p.code for p in problems] == ["ledger_field"]
    assert letters.check_template(variables, [_r(2)], [], [], "t.docx", with_codes=True) == []


def test_empty_optional_field_is_a_warning_with_rows():
    variables = {"honorific": ["paragraph 2"]}
    rows = [_r(2, honorific="奶奶"), _r(3), _r(4, honorific="爷爷"), _r(5)]
    problems = letters.check_template(variables, rows, [], [], "t.docx", False)
    assert [(p.severity, p.code) for p in problems] == [("warning", "empty_field")]
    assert "3, 5" in problems[0].message
