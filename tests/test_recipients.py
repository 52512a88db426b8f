"""Reading recipient lists: encodings, delimiters, workbooks, header aliases, problems, order."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import openpyxl
import pytest

from letterpress.errors import InputError
from letterpress.models import Recipient
from letterpress.recipients.clean import (
    HEADER_ALIASES,
    RecipientList,
    compose_address,
    delivery_order,
    generated_id,
    load,
    natural_key,
)
from letterpress.recipients.read import cell_text, column_letter
from letterpress.recipients.rowchecks import check_phone, rows_text

HEADER = "序号,姓名,称呼,小区,楼栋,单元,房号,联系电话,人员类别,志愿者,备注"


def write_csv(tmp_path: Path, lines, name="list.csv", encoding="utf-8", newline="\r\n") -> Path:
    path = tmp_path / name
    path.write_bytes(newline.join(lines).encode(encoding) + newline.encode(encoding))
    return path


def write_xlsx(tmp_path: Path, rows, name="list.xlsx", merge=(), title="名单", formats=None) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = title
    for r, row in enumerate(rows, start=1):
        for c, value in enumerate(row, start=1):
            if value is not None:
                ws.cell(row=r, column=c, value=value)
    for (cell, fmt) in (formats or {}).items():
        ws[cell].number_format = fmt
    for rng in merge:
        ws.merge_cells(rng)
    wb.save(path := tmp_path / name)
    return path


def codes(rl: RecipientList):
    return [p.code for p in rl.problems]


def only(rl: RecipientList, code: str):
    found = [p for p in rl.problems if p.code == code]
    assert len(found) == 1, rl.problems
    return found[0]


# -- the fixtures -------------------------------------------------------------------------------

def test_excel_gbk_csv_fixture(fixtures):
    rl = load(fixtures / "qingyuzui-excel-gbk.csv")
    assert rl.encoding == "gb18030"
    assert rl.errors == []
    assert rl.headers[:3] == ["序号", "姓名", "称呼"]
    assert rl.mapping["name"] == "姓名" and rl.mapping["phone"] == "联系电话"
    assert rl.mapping["category"] == "人员类别" and rl.mapping["volunteer"] == "志愿者"
    assert len(rl.recipients) == 12
    first, last = rl.recipients[0], rl.recipients[-1]
    assert (first.row, first.id, first.name, first.honorific) == (2, "1", "吴秀兰", "奶奶")
    assert first.address == "沙湖小区2栋3单元104"
    assert first.phone == "18507069464" and first.category == "重症老人"
    assert (last.row, last.name, last.address) == (13, "谢秀兰", "九天公寓6栋4单元301")
    assert not first.id_generated
    assert first.notes == "" and first.columns["备注"] == ""


def test_xlsx_fixture_numbers_and_merged_cells(fixtures):
    rl = load(fixtures / "qingyuzui.xlsx")
    assert rl.encoding is None and rl.sheet == "慰问名单"
    assert rl.errors == []
    assert [r.row for r in rl.recipients] == list(range(2, 14))
    assert [r.id for r in rl.recipients] == [str(i) for i in range(1, 13)]
    assert rl.recipients[0].phone == "18507069464"
    assert all(r.phone.isdigit() and len(r.phone) == 11 for r in rl.recipients)
    # D2:D5, D6:D9 and D10:D13 are merged: every row has its compound.
    assert [r.compound for r in rl.recipients] == ["沙湖小区"] * 4 + ["电车宿舍"] * 4 + ["九天公寓"] * 4
    assert rl.recipients[1].address == "沙湖小区8栋1单元704"
    assert rl.recipients[1].columns["小区"] == "沙湖小区"


def test_fixtures_agree(fixtures):
    from_csv = load(fixtures / "qingyuzui-excel-gbk.csv").recipients
    from_xlsx = load(fixtures / "qingyuzui.xlsx").recipients
    assert from_csv == from_xlsx


# -- encodings and delimiters -------------------------------------------------------------------

ROWS = [HEADER, "1,吴秀兰,奶奶,沙湖小区,2栋,3单元,104,18507069464,重症老人,李明,"]


@pytest.mark.parametrize("encoding, reported", [
    ("utf-8-sig", "utf-8-sig"), ("utf-8", "utf-8"), ("gbk", "gb18030"),
])
def test_csv_encodings_detected(tmp_path, encoding, reported):
    rl = load(write_csv(tmp_path, ROWS, encoding=encoding))
    assert rl.encoding == reported
    assert rl.headers[0] == "序号"          # no BOM left on the first header
    assert rl.recipients[0].name == "吴秀兰"
    assert rl.recipients[0].address == "沙湖小区2栋3单元104"


def test_encoding_override(tmp_path):
    path = write_csv(tmp_path, ROWS, encoding="gbk")
    assert load(path, encoding="gbk").recipients[0].name == "吴秀兰"
    with pytest.raises(InputError) as exc:
        load(path, encoding="utf-8")
    assert exc.value.code == "bad_encoding" and exc.value.hint
    with pytest.raises(InputError) as exc:
        load(path, encoding="no-such-codec")
    assert exc.value.code == "unknown_encoding"


def test_utf16_text_falls_back_to_detector(tmp_path):
    path = tmp_path / "list.txt"
    path.write_bytes("\r\n".join(line.replace(",", "\t") for line in ROWS).encode("utf-16"))
    rl = load(path)
    assert rl.encoding.replace("-", "_").lower().startswith("utf_16")
    assert rl.recipients[0].name == "吴秀兰"


@pytest.mark.parametrize("delimiter", ["\t", ";"])
def test_tab_and_semicolon_delimiters(tmp_path, delimiter):
    lines = ["姓名{d}地址{d}备注".format(d=delimiter),
             "吴秀兰{d}沙湖小区2栋3单元104{d}肉, 蔬菜".format(d=delimiter)]
    rl = load(write_csv(tmp_path, lines))
    assert rl.headers == ["姓名", "地址", "备注"]
    r = rl.recipients[0]
    assert (r.name, r.address, r.notes) == ("吴秀兰", "沙湖小区2栋3单元104", "肉, 蔬菜")


def test_quoted_newline_is_one_row_and_blank_rows_count(tmp_path):
    lines = ["姓名,地址,备注", '吴秀兰,沙湖小区2栋,"第一行\n第二行"', "", ",,", "朱建国,电车宿舍8栋,"]
    rl = load(write_csv(tmp_path, lines))
    assert [(r.row, r.name) for r in rl.recipients] == [(2, "吴秀兰"), (5, "朱建国")]
    assert rl.recipients[0].notes == "第一行\n第二行"


@pytest.mark.parametrize("newline", ["\r\n", "\n", "\r"])
def test_a_text_list_is_parsed_as_its_households_are_made(tmp_path, monkeypatch, newline):
    """A district's rows are never all held: the parser is at most the header search ahead
    of the households made, in every line ending Excel and WPS write."""
    from letterpress.recipients import clean, read

    lines = [HEADER] + [f"{k},示例{k},奶奶,示例小区,{k % 9 + 1}栋,1单元,{k}01,138{k:08d},"
                        f"独居老人,林小舟,\"上午\n在家\"" for k in range(1, 501)]
    path = write_csv(tmp_path, lines, encoding="gbk", newline=newline)
    parsed, ahead = [], []
    real_rows, real_make = read._text_rows, clean._make_recipient

    def counted_rows(*args, **kwargs):
        for row in real_rows(*args, **kwargs):
            parsed.append(row[0])
            yield row

    def counted_make(number, *args, **kwargs):
        ahead.append(len(parsed) - number)
        return real_make(number, *args, **kwargs)

    monkeypatch.setattr(read, "_text_rows", counted_rows)
    monkeypatch.setattr(clean, "_make_recipient", counted_make)
    rl = load(path)
    assert len(rl.recipients) == 500 and rl.errors == [] and rl.encoding == "gb18030"
    assert rl.recipients[-1].notes == "上午\n在家" and rl.recipients[-1].row == 501
    assert max(ahead) <= clean.HEADER_SEARCH_ROWS


def test_a_broken_row_far_down_is_named_by_its_line(tmp_path):
    lines = [HEADER] + [f"{k},示例{k},奶奶,示例小区,1栋,1单元,101,,,," for k in range(1, 300)]
    long_cell = lines[:]
    long_cell[250] += "x" * 40000
    with pytest.raises(InputError) as exc:
        load(write_csv(tmp_path, long_cell))
    assert exc.value.code == "cell_too_long" and exc.value.where.row == 251
    broken = lines[:]
    broken[200] = '200,"示例,奶奶'          # a quote never closed swallows the rest
    with pytest.raises(InputError) as exc:
        load(write_csv(tmp_path, broken, name="broken.csv"))
    assert exc.value.code == "bad_csv" and exc.value.where.row == 201


def test_title_row_above_header(tmp_path):
    lines = ["青鱼嘴社区慰问名单,,", "姓名,地址,志愿者", "吴秀兰,沙湖小区2栋,李明"]
    rl = load(write_csv(tmp_path, lines))
    assert rl.header_row == 2
    assert [(r.row, r.name) for r in rl.recipients] == [(3, "吴秀兰")]
    assert rl.errors == []


def test_values_trimmed(tmp_path):
    lines = [" 姓名 , 地址 ", "\u3000吴秀兰 ,  沙湖小区2栋  "]
    r = load(write_csv(tmp_path, lines)).recipients[0]
    assert (r.name, r.address) == ("吴秀兰", "沙湖小区2栋")
    assert r.columns == {"姓名": "吴秀兰", "地址": "沙湖小区2栋"}


# -- unreadable files ---------------------------------------------------------------------------

OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def test_unreadable_files(tmp_path):
    cases = {
        "old.xls": (OLE + b"\0" * 100, "old_excel"),
        "old-renamed.csv": (OLE + b"\0" * 100, "old_excel"),
        "list.pdf": (b"%PDF-1.4", "unknown_format"),
        "damaged.csv": (b"PK\x03\x04rest", "bad_xlsx"),
        "broken.xlsx": (b"not a zip at all", "bad_xlsx"),
        "quote.csv": ('姓名,地址\n"吴秀兰,沙湖小区\n朱建国,电车宿舍\n'.encode(), "bad_csv"),
    }
    for name, (data, code) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(InputError) as exc:
            load(tmp_path / name)
        assert exc.value.code == code, name
        assert exc.value.hint, name
        assert exc.value.where.file == str(tmp_path / name)
    with pytest.raises(InputError) as exc:
        load(tmp_path / "missing.csv")
    assert exc.value.code == "file_not_found"
    assert "Save As" in str(pytest.raises(InputError, load, tmp_path / "old.xls").value.hint)


def test_workbook_under_another_name_is_read(tmp_path):
    path = write_xlsx(tmp_path, [["姓名", "地址"], ["吴秀兰", "沙湖小区2栋"]])
    for name in ("saved-as.csv", "saved-as.xls"):
        renamed = tmp_path / name
        renamed.write_bytes(path.read_bytes())
        assert load(renamed).recipients[0].name == "吴秀兰", name


# -- workbooks ----------------------------------------------------------------------------------

def test_xlsx_cells_as_shown(tmp_path):
    rows = [
        ["编号", "姓名", "小区", "楼栋", "房号", "电话", "日期", "户号"],
        ["007", "吴秀兰", "沙湖小区", "2栋", 104, 13812345678.0, dt.datetime(2020, 2, 24), 5],
        None,
        ["008", "朱建国", None, "10栋", 704, 18652231581, dt.date(2020, 2, 25), 12],
        ["009", "苏文明", None, "3栋", 501.5, "027-87654321", None, None],
    ]
    path = write_xlsx(tmp_path, [r or [] for r in rows], merge=["C2:C5"],
                      formats={"H2": "000", "H4": "000"})
    rl = load(path)
    assert rl.errors == []
    assert [r.row for r in rl.recipients] == [2, 4, 5]
    a, b, c = rl.recipients
    assert (a.id, b.id, c.id) == ("007", "008", "009")
    assert a.phone == "13812345678" and b.phone == "18652231581"
    assert [r.compound for r in rl.recipients] == ["沙湖小区"] * 3
    assert a.room == "104" and c.room == "501.5"
    assert a.columns["日期"] == "2020-02-24" and b.columns["日期"] == "2020-02-25"
    assert a.columns["户号"] == "005" and b.columns["户号"] == "012"
    assert b.address == "沙湖小区10栋704"


def test_xlsx_sheet_choice(tmp_path):
    wb = openpyxl.Workbook()
    wb.active.title = "说明"
    wb.active["A1"] = "本表为慰问名单"
    ws = wb.create_sheet("名单")
    ws.append(["姓名", "地址"])
    ws.append(["吴秀兰", "沙湖小区2栋"])
    wb.save(path := tmp_path / "two.xlsx")
    assert codes(load(path)) == ["no_header"]          # the first sheet is read by default
    rl = load(path, sheet="名单")
    assert rl.sheet == "名单" and rl.recipients[0].name == "吴秀兰"
    with pytest.raises(InputError) as exc:
        load(path, sheet="Sheet9")
    assert exc.value.code == "unknown_sheet"
    assert "'说明'" in exc.value.hint and "'名单'" in exc.value.hint


@pytest.mark.parametrize("value, fmt, text", [
    (13812345678.0, "General", "13812345678"), (42, "General", "42"), (1.5, "General", "1.5"),
    (7, "000", "007"), (0.25, "0%", "25%"), (3.14159, "0.00", "3.14"), (None, "General", ""),
    (True, "General", "TRUE"), (dt.datetime(2020, 2, 24, 9, 30), "General", "2020-02-24 09:30"),
    ("0123", "@", "0123"),
])
def test_cell_text(value, fmt, text):
    assert cell_text(value, fmt) == text


def test_column_letter():
    assert [column_letter(i) for i in (0, 25, 26, 27, 701)] == ["A", "Z", "AA", "AB", "ZZ"]


# -- headers and fields -------------------------------------------------------------------------

def test_english_headers(tmp_path):
    lines = ["Full_Name,PHONE NUMBER,Building,Unit,Room,compound,Volunteer,Favourite colour",
             "Li Ming,138 1234 5678,Block 3,Unit 2,401,Lakeside Estate,Chen Xiao,green"]
    rl = load(write_csv(tmp_path, lines))
    r = rl.recipients[0]
    assert rl.mapping["name"] == "Full_Name" and rl.mapping["phone"] == "PHONE NUMBER"
    assert r.name == "Li Ming" and r.volunteer == "Chen Xiao"
    assert r.address == "Lakeside Estate Block 3 Unit 2-401"
    assert r.columns["Favourite colour"] == "green"
    assert rl.errors == []


def test_config_aliases(tmp_path):
    lines = ["户主,住处,联系方式,配送人", "吴秀兰,沙湖小区2栋,13812345678,李明"]
    path = write_csv(tmp_path, lines)
    assert codes(load(path)) == ["no_header"]
    rl = load(path, aliases={"name": ("户主", "老人姓名"), "address": ("住处",),
                             "notes": ("联系方式",)})
    r = rl.recipients[0]
    assert (r.name, r.address, r.notes, r.phone, r.volunteer) == (
        "吴秀兰", "沙湖小区2栋", "13812345678", "", "李明")
    assert rl.mapping == {"name": "户主", "address": "住处", "volunteer": "配送人",
                          "notes": "联系方式"}


def test_fields_have_both_names(tmp_path):
    lines = ["姓名,地址,楼长", "吴秀兰,沙湖小区2栋,张伟"]
    r = load(write_csv(tmp_path, lines)).recipients[0]
    fields = r.fields()
    assert fields["name"] == fields["姓名"] == "吴秀兰"
    assert fields["address"] == fields["地址"] == "沙湖小区2栋"
    assert fields["楼长"] == "张伟" and fields["phone"] == ""


def test_header_aliases_cover_every_field():
    from letterpress.models import CANONICAL_FIELDS
    assert set(HEADER_ALIASES) == set(CANONICAL_FIELDS)
    assert "姓名" in HEADER_ALIASES["name"] and "门牌" in HEADER_ALIASES["room"]


def test_composed_address():
    assert compose_address(["沙湖小区", "3栋", "2单元", "401"]) == "沙湖小区3栋2单元401"
    assert compose_address(["沙湖小区", "3", "2", "401"]) == "沙湖小区3-2-401"
    assert compose_address(["九天公寓", "", "", "101"]) == "九天公寓101"
    assert compose_address(["", "", "", ""]) == ""


def test_composed_address_when_address_cell_blank(tmp_path):
    lines = ["姓名,地址,小区,楼栋,房号", "吴秀兰,,沙湖小区,2栋,104", "朱建国,湖滨路8号,沙湖小区,8栋,704"]
    a, b = load(write_csv(tmp_path, lines)).recipients
    assert a.address == "沙湖小区2栋104"
    assert b.address == "湖滨路8号"


def test_ids_kept_or_generated(tmp_path):
    lines = ["编号,姓名,地址", "007,吴秀兰,沙湖小区2栋", ",朱建国,电车宿舍8栋"]
    a, b = load(write_csv(tmp_path, lines)).recipients
    assert (a.id, a.id_generated) == ("007", False)
    assert b.id_generated and b.id == generated_id("朱建国", "电车宿舍8栋")
    assert b.id.startswith("h-") and len(b.id) == 12
    assert generated_id(" 朱建国", "电车宿舍 8栋") == b.id
    assert generated_id("朱建国", "电车宿舍9栋") != b.id
    lines = ["姓名,地址", "朱建国,电车宿舍8栋"]
    again = load(write_csv(tmp_path, lines, name="again.csv")).recipients[0]
    assert again.id == b.id


# -- problems -----------------------------------------------------------------------------------

def test_every_row_problem_with_row_and_column(tmp_path):
    lines = [
        "编号,姓名,地址,电话,志愿者",              # row 1
        "1,吴秀兰,沙湖小区2栋,13812345678,李明",     # row 2: fine
        "2,,沙湖小区3栋,,李明",                    # row 3: missing_name
        "3,朱建国,,,李明",                        # row 4: missing_address
        "1,苏文明,沙湖小区5栋,,李明",               # row 5: duplicate_id (row 2)
        "4,李桂兰,沙湖小区1栋,1.85071E+10,李明",    # row 6: phone_scientific
        "5,田凤英,电车宿舍8栋,12345,李明",           # row 7: bad_phone
        "6,任文明,电车宿舍5栋,,李明,多余",          # row 8: extra_cells
        "合计,5户,,,",                            # row 9: summary_row
    ]
    rl = load(write_csv(tmp_path, lines))
    found = {p.code: p for p in rl.problems}
    expected = {
        "missing_name": (3, "姓名"), "missing_address": (4, "地址"), "duplicate_id": (5, "编号"),
        "phone_scientific": (6, "电话"), "bad_phone": (7, "电话"), "extra_cells": (8, "F"),
        "summary_row": (9, "编号"),
    }
    assert set(found) == set(expected)
    for code, (row, column) in expected.items():
        p = found[code]
        assert p.is_error, code
        assert (p.where.row, p.where.column, p.where.file) == (row, column, str(tmp_path / "list.csv")), code
        assert p.hint, code
    assert "row 2 and row 5" in found["duplicate_id"].message
    assert "'1.85071E+10'" in found["phone_scientific"].message
    assert "'12345'" in found["bad_phone"].message
    assert "'多余'" in found["extra_cells"].message
    assert "delete the row" in found["summary_row"].hint
    assert [p.where.row for p in rl.problems] == sorted(p.where.row for p in rl.problems)
    assert "合计" not in [r.id for r in rl.recipients]
    assert str(found["missing_name"]).startswith(f"{tmp_path / 'list.csv'}, row 3, column '姓名': ")


def test_duplicate_household_without_id_names_both_rows(tmp_path):
    lines = ["姓名,地址,志愿者", "吴秀兰,沙湖小区2栋,李明", "朱建国,沙湖小区8栋,李明",
             "吴秀兰 ,沙湖小区2栋,陈晓"]
    p = only(load(write_csv(tmp_path, lines)), "duplicate_household")
    assert p.is_error and p.where.row == 4 and p.where.column == "姓名"
    assert "row 2 and row 4" in p.message and "吴秀兰" in p.message


def test_duplicate_id_three_times(tmp_path):
    lines = ["序号,姓名,地址", "7,甲,一栋", "7,乙,二栋", "8,丙,三栋", "7,丁,四栋"]
    p = only(load(write_csv(tmp_path, lines)), "duplicate_id")
    assert "id '7' appears in rows 2, 3 and 5" == p.message


def test_no_header(tmp_path):
    lines = ["户主,住处", "吴秀兰,沙湖小区2栋", ",", "朱建国,"]
    rl = load(write_csv(tmp_path, lines))
    assert codes(rl) == ["no_header"]
    p = rl.problems[0]
    assert p.is_error and p.where.row == 1
    assert "'户主', '住处'" in p.message and "姓名" in p.hint and "[columns]" in p.hint
    assert rl.recipients == []


def test_empty_lists(tmp_path):
    (tmp_path / "blank.csv").write_bytes(b"")
    assert codes(load(tmp_path / "blank.csv")) == ["empty_list"]
    rl = load(write_csv(tmp_path, ["姓名,地址", ",", ""]))
    p = only(rl, "empty_list")
    assert p.is_error and codes(rl) == ["empty_list"]


def test_no_volunteer_warning_lists_rows(tmp_path):
    lines = ["姓名,地址,志愿者", "甲,一栋,李明", "乙,二栋,", "丙,三栋,", "丁,四栋,", "戊,五栋,陈晓", "己,六栋,"]
    rl = load(write_csv(tmp_path, lines))
    p = only(rl, "no_volunteer")
    assert not p.is_error and rl.ok
    assert p.where.column == "志愿者"
    assert "4 households have no volunteer" in p.message and "rows 3-5 and 7" in p.message
    assert "unassigned" in p.hint and "last" in p.hint
    no_column = load(write_csv(tmp_path, ["姓名,地址", "甲,一栋"], name="b.csv"))
    assert codes(no_column) == ["no_volunteer"]


def test_header_problems(tmp_path):
    lines = ["姓名,电话,地址,手机,电话", "吴秀兰,13812345678,沙湖小区2栋,13912345678,"]
    rl = load(write_csv(tmp_path, lines))
    dup = only(rl, "duplicate_header")
    assert dup.is_error and dup.where.row == 1 and dup.where.column == "电话"
    assert "columns B and E" in dup.message
    amb = only(rl, "ambiguous_column")
    assert not amb.is_error and "'手机'" in amb.message
    assert rl.mapping["phone"] == "电话" and rl.recipients[0].phone == "13812345678"


def test_repeated_header_row(tmp_path):
    lines = ["姓名,地址", "甲,一栋", "姓名,地址", "乙,二栋"]
    rl = load(write_csv(tmp_path, lines))
    p = only(rl, "repeated_header")
    assert p.where.row == 3 and [r.name for r in rl.recipients] == ["甲", "乙"]


def test_missing_address_without_any_address_column(tmp_path):
    rl = load(write_csv(tmp_path, ["姓名,志愿者", "甲,李明", "乙,李明"]))
    assert codes(rl) == ["missing_address", "missing_address"]
    assert "no address column" in rl.problems[0].message


@pytest.mark.parametrize("phone", [
    "13812345678", "138 1234 5678", "138-1234-5678", "+86 138 1234 5678", "+8613812345678",
    "027-87654321", "(027) 8765 4321", "02787654321", "87654321", "8765432", "0717-1234567",
    "+86 27 8765 4321", "13812345678/027-87654321", "13812345678、13912345678", "１３８１２３４５６７８",
])
def test_good_phones(phone):
    assert check_phone(phone) is None


@pytest.mark.parametrize("phone, code", [
    ("1.38E+10", "phone_scientific"), ("1.85071e+10", "phone_scientific"),
    ("12345678901", "bad_phone"), ("1381234567", "bad_phone"), ("2787654321", "bad_phone"),
    ("phone me", "bad_phone"), ("138123456789", "bad_phone"), ("13812345678/12", "bad_phone"),
])
def test_bad_phones(phone, code):
    assert check_phone(phone)[0] == code


@pytest.mark.parametrize("cell", ["合计", "合计：40户", "总计", "小计", "Total", "TOTAL: 40", "Sum"])
def test_summary_rows(tmp_path, cell):
    rl = load(write_csv(tmp_path, ["姓名,地址", "甲,一栋", f"{cell},"]))
    assert only(rl, "summary_row").where.row == 3
    assert [r.name for r in rl.recipients] == ["甲"]


def test_name_that_only_starts_like_a_total_is_kept(tmp_path):
    rl = load(write_csv(tmp_path, ["姓名,地址", "Sum Ka Wai,一栋", "Totten,二栋"]))
    assert "summary_row" not in codes(rl) and len(rl.recipients) == 2


def test_rows_text():
    assert rows_text([4]) == "row 4"
    assert rows_text([9, 4, 12]) == "rows 4, 9 and 12"
    assert rows_text([4, 5, 6, 7, 9]) == "rows 4-7 and 9"
    assert rows_text([2, 3]) == "rows 2 and 3"
    assert rows_text([2, 3, 7, 8, 9]) == "rows 2, 3 and 7-9"


# -- delivery order -----------------------------------------------------------------------------

def test_natural_key():
    assert sorted(["10栋", "2栋", "1栋"], key=natural_key) == ["1栋", "2栋", "10栋"]
    assert sorted(["12单元", "3单元"], key=natural_key) == ["3单元", "12单元"]
    assert sorted(["十二单元", "三单元"], key=natural_key) == ["三单元", "十二单元"]
    assert sorted(["A10", "a2", "A1"], key=natural_key) == ["A1", "a2", "A10"]
    assert natural_key("") < natural_key("1栋")
    assert natural_key("２栋") == natural_key("2栋")


def _r(row, volunteer="", compound="", building="", unit="", room=""):
    return Recipient(row=row, id=str(row), name=f"n{row}", volunteer=volunteer,
                     compound=compound, building=building, unit=unit, room=room)


def test_delivery_order():
    people = [
        _r(2, "", "沙湖小区", "1栋"),
        _r(3, "陈晓", "沙湖小区", "10栋", "1单元", "101"),
        _r(4, "李明", "沙湖小区", "2栋"),
        _r(5, "陈晓", "沙湖小区", "2栋", "12单元", "101"),
        _r(6, "陈晓", "沙湖小区", "2栋", "3单元", "1201"),
        _r(7, "陈晓", "沙湖小区", "2栋", "3单元", "302"),
        _r(8, "李明", "九天公寓"),
        _r(9, ""),
        _r(10, "李明", "九天公寓"),
    ]
    ordered = delivery_order(people)
    assert [r.row for r in ordered] == [7, 6, 5, 3, 8, 10, 4, 9, 2]   # an empty place sorts first
    assert [r.row for r in people] == list(range(2, 11))    # input unchanged


def test_delivery_order_keeps_list_order_without_places():
    people = [_r(i, "李明" if i % 2 else "陈晓") for i in range(2, 9)]
    assert [r.row for r in delivery_order(people)] == [2, 4, 6, 8, 3, 5, 7]


def test_fixture_delivery_order(fixtures):
    ordered = delivery_order(load(fixtures / "qingyuzui.xlsx").recipients)
    # Volunteers in order of first appearance (李明, 陈晓, 王磊, 赵静, ...); within one,
    # compounds in text order (九天公寓 before 沙湖小区), then buildings.
    assert [r.row for r in ordered] == [10, 2, 11, 3, 12, 4, 13, 5, 6, 7, 8, 9]


def test_csv_text_formula_cells(tmp_path):
    lines = ['编号,姓名,地址,电话', '="007",吴秀兰,沙湖小区2栋,"=""13812345678"""']
    r = load(write_csv(tmp_path, lines)).recipients[0]
    assert (r.id, r.phone) == ("007", "13812345678")


def test_xlsx_header_below_blank_and_title_rows(tmp_path):
    rows = [["青鱼嘴社区慰问名单"], [], ["姓名", "地址", "电话"], ["吴秀兰", "沙湖小区2栋", 13812345678],
            [], ["合计", None, None]]
    rl = load(write_xlsx(tmp_path, rows, merge=["A1:C1"]))
    assert rl.header_row == 3 and rl.headers == ["姓名", "地址", "电话"]
    assert [(r.row, r.phone) for r in rl.recipients] == [(4, "13812345678")]
    assert only(rl, "summary_row").where.row == 6


def test_xlsx_only_header(tmp_path):
    rl = load(write_xlsx(tmp_path, [["姓名", "地址"]]))
    assert codes(rl) == ["empty_list"]
