"""The `letterpress` command as a user meets it: CliRunner, tmp_path, outputs read back."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner
from clitools import manifest, run
from conftest import FIXTURES, ROOT
from docx import Document

from letterpress.cli import main

TEMPLATE_ZH = str(ROOT / "templates" / "letter-zh.docx")


def docx_text(path: Path) -> str:
    doc = Document(str(path))
    parts = [p.text for p in doc.paragraphs]
    for section in doc.sections:
        parts += [p.text for p in section.header.paragraphs]
        parts += [p.text for p in section.footer.paragraphs]
    return "\n".join(parts)


def write_csv(path: Path, rows, encoding="utf-8-sig"):
    with open(path, "w", encoding=encoding, newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


HEADER = ["序号", "姓名", "称呼", "小区", "楼栋", "单元", "房号", "联系电话", "人员类别", "志愿者", "备注"]


def small_list(tmp_path, n=6, encoding="gbk"):
    vols = ["李明", "陈晓"]
    rows = [HEADER] + [[i, f"王{i}英", "奶奶", "沙湖小区", f"{i}栋", "1单元", f"{i}01",
                        f"1380000{i:04d}", "独居老人", vols[i % 2], ""] for i in range(1, n + 1)]
    return write_csv(tmp_path / "list.csv", rows, encoding)


# --- check -----------------------------------------------------------------------------

def test_check_reads_the_excel_gbk_csv_with_a_split_run_template():
    result = run("check", "-r", FIXTURES / "qingyuzui-excel-gbk.csv",
                 "-t", FIXTURES / "word-split-runs.docx")
    assert "12 households" in result.output
    assert "8 volunteers" in result.output
    assert "0 errors" in result.output


def test_check_reports_every_problem_with_rows_and_template_places(tmp_path):
    rows = [HEADER,
            [1, "王秀英", "奶奶", "沙湖小区", "1栋", "1单元", "101", "13800000001", "", "李明", ""],
            [2, "", "爷爷", "沙湖小区", "2栋", "1单元", "102", "13800000002", "", "李明", ""],
            [1, "张桂兰", "奶奶", "沙湖小区", "3栋", "1单元", "103", "1.38E+10", "", "李明", ""],
            ["合计", "", "", "", "", "", "", "", "", "", ""]]
    lst = write_csv(tmp_path / "bad.csv", rows, "gbk")
    tpl = Document()
    tpl.add_paragraph("致居民的一封信")
    tpl.add_paragraph("尊敬的{{ nmae }}{{ honorific }}:")
    tpl.save(tmp_path / "t.docx")
    result = run("check", "-r", lst, "-t", tmp_path / "t.docx", ok=False)
    out = result.output
    assert result.exit_code == 1
    assert "row 3" in out and "姓名" in out                    # missing name
    assert "row 2 and row 4" in out                           # duplicate id names both rows
    assert "1.38E+10" in out and "row 4" in out               # scientific notation
    assert "row 5" in out                                     # the 合计 row
    assert "{{ nmae }}" in out and "paragraph 2" in out and "{{ name }}" in out


def test_invalid_jinja_says_where_and_writes_nothing(tmp_path):
    lst = small_list(tmp_path)
    tpl = Document()
    tpl.add_paragraph("您好")
    tpl.add_paragraph("{% if name %}没有结束")
    tpl.save(tmp_path / "broken.docx")
    out = tmp_path / "out"
    result = run("letters", "-r", lst, "-t", tmp_path / "broken.docx", "-o", out, ok=False)
    assert result.exit_code == 1
    assert "paragraph 2" in result.stderr
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("args, words", [
    (["check", "-r", "nope.xlsx", "-t", "zh"], "does not exist"),
    (["check", "-r", str(FIXTURES / "qingyuzui.xlsx"), "-t", "nope.docx"], "does not exist"),
    (["check", "-r", str(FIXTURES / "qingyuzui.xlsx"), "-t", str(FIXTURES / "qingyuzui.xlsx")],
     "docx"),
    (["status", "--db", "sqlite:///does/not/exist.db"], "no ledger"),
    # serve creates a missing ledger, but not where a file stands in for a folder
    (["serve", "--db", "sqlite:///plain.txt/x.db", "--port", "1"], "cannot make a ledger"),
])
def test_mistakes_get_a_message_not_a_traceback(tmp_path, monkeypatch, args, words):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "plain.txt").write_text("not a folder")
    result = run(*args, ok=False)
    assert result.exit_code == 1
    assert words in (result.output + result.stderr).lower()


# --- letters ---------------------------------------------------------------------------

def test_letters_from_the_merged_cell_xlsx(tmp_path):
    out = tmp_path / "out"
    result = run("letters", "-r", FIXTURES / "qingyuzui.xlsx", "-t", "zh", "--batch",
                 "2020-02-24 测试", "--org", "示例街道办", "--date", "2020-02-24", "-o", out, "-q")
    assert "12 letters" in result.output
    rows = manifest(out / "manifest.csv")
    assert list(rows[0]) == ["seq", "id", "name", "address", "volunteer", "letter"]
    # Delivery order: volunteers by first appearance (李明, 陈晓, 王磊, ...), then natural order.
    assert [r["volunteer"] for r in rows[:2]] == ["李明", "李明"]
    assert rows[2]["volunteer"] == "陈晓"
    assert [int(r["seq"]) for r in rows] == list(range(1, 13))
    # The merged compound cell fills every row: 朱建国 (row 3) lives in 沙湖小区.
    zhu = next(r for r in rows if r["name"] == "朱建国")
    assert zhu["address"] == "沙湖小区8栋1单元704"
    letters = sorted((out / "letters").iterdir())
    assert [p.name for p in letters] == [Path(r["letter"]).name for r in rows]
    first = docx_text(out / rows[0]["letter"])
    assert rows[0]["name"] in first and "2020年2月24日" in first and "示例街道办" in first
    merged = docx_text(out / "letters.docx")
    positions = [merged.index("尊敬的" + r["name"]) for r in rows]
    assert positions == sorted(positions)                # all letters, in delivery order


def test_letters_jobs_2_gives_the_same_letters(tmp_path):
    lst = small_list(tmp_path, n=30)
    common = ["-r", lst, "-t", "zh", "--batch", "b", "--date", "2020-02-24", "-q"]
    run("letters", *common, "-o", tmp_path / "one", "--jobs", 1)
    run("letters", *common, "-o", tmp_path / "two", "--jobs", 2)
    one = sorted((tmp_path / "one" / "letters").iterdir())
    two = sorted((tmp_path / "two" / "letters").iterdir())
    assert [p.name for p in one] == [p.name for p in two]
    for a, b in zip(one, two):
        assert docx_text(a) == docx_text(b)
    assert docx_text(tmp_path / "one" / "letters.docx") == docx_text(tmp_path / "two" / "letters.docx")


def test_config_file_supplies_options_and_flags_win(tmp_path):
    small_list(tmp_path)
    (tmp_path / "letterpress.toml").write_text(
        '[batch]\ntitle = "配置批次"\norg = "配置单位"\ndate = 2020-02-24\n'
        'recipients = "list.csv"\ntemplate = "en"\n', encoding="utf-8")
    out = tmp_path / "out"
    run("letters", "-c", tmp_path / "letterpress.toml", "--org", "Flag Office", "-o", out, "-q")
    text = docx_text(out / "letters.docx")
    assert "Flag Office" in text and "配置单位" not in text
    assert "24 February 2020" in text


# --- build, status, confirm, report, reprint ------------------------------------------------

@pytest.fixture
def built(tmp_path):
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    out = tmp_path / "demo"
    result = run("demo", "--out", out, "--db", db, "--base-url", "http://192.168.1.20:8470", "-q")
    assert "40 households" in result.output
    return out, db


def test_build_writes_slips_runsheets_and_codes(built):
    from pdftools import decoded_pages

    out, db = built
    rows = manifest(out / "manifest.csv")
    assert len(rows) == 40 and {"code", "url"} <= set(rows[0])
    assert all(r["url"] == f"HTTP://192.168.1.20:8470/H/{r['code'].replace('-', '')}"
               for r in rows)
    first_page = decoded_pages(out / "slips.pdf")[0]
    assert sorted(first_page) == sorted(r["url"] for r in rows[:8])
    sheets = sorted(p.name for p in (out / "runsheets").iterdir())
    assert len(sheets) == 8 and sheets[0].startswith("01-") and sheets[0].endswith(".pdf")
    import zipfile

    with zipfile.ZipFile(out / rows[0]["letter"]) as z:   # the demo letter shows no QR: none made
        assert not [n for n in z.namelist() if n.startswith("word/media/")]
    assert rows[0]["volunteer"] in sheets[0]


def test_rebuilding_keeps_codes_and_status_counts(built, tmp_path):
    out, db = built
    before = {r["id"]: r["code"] for r in manifest(out / "manifest.csv")}
    run("demo", "--out", out, "--db", db, "--base-url", "http://192.168.1.20:8470", "-q")
    after = {r["id"]: r["code"] for r in manifest(out / "manifest.csv")}
    assert before == after
    status = json.loads(run("status", "--db", db, "--json").stdout)
    b = status["batches"][0]
    assert b["households"] == 40 and b["outstanding"] == 40
    assert b["households"] == b["delivered"] + b["failed"] + b["outstanding"] + b["withdrawn"]
    assert len(b["volunteers"]) == 8


def test_confirm_report_and_reprint(built, tmp_path):
    out, db = built
    rows = manifest(out / "manifest.csv")
    code1, code2, code3 = rows[0]["code"], rows[1]["code"], rows[2]["code"]
    r = run("confirm", code1, "--by", rows[0]["volunteer"], "--db", db)
    assert "1 new" in r.output
    r = run("confirm", code1, "--by", rows[0]["volunteer"], "--db", db)
    assert "duplicate" in r.output
    typo = code2[:-1] + ("0" if code2[-1] != "0" else "1")
    r = run("confirm", typo, "--by", "李明", "--db", db, ok=False)
    assert r.exit_code == 1 and "rejected" in r.output
    scans = tmp_path / "scans.csv"
    scans.write_text(f"url,time\n{rows[1]['url'].lower()},2020-02-24 10:32\n"
                     f"{code2}\n{rows[2]['url']}\nNOT-A-CODE\n", encoding="utf-8")
    r = run("confirm", "--from", scans, "--db", db, ok=False)
    assert "2 new, 1 repeated, 0 duplicate, 1 rejected" in r.output
    r = run("confirm", code3, "--outcome", "not-home", "--by", "李明", "--db", db)
    status = json.loads(run("status", "--db", db, "--json").stdout)["batches"][0]
    assert (status["delivered"], status["failed"]) == (3, 0)
    report = tmp_path / "report.csv"
    run("report", "--db", db, "-o", report)
    lines = manifest(report)
    assert len(lines) == 40 and lines[0]["状态"] == "已送达"
    run("report", "--db", db, "-o", tmp_path / "report.xlsx")
    sheet = openpyxl.load_workbook(tmp_path / "report.xlsx").worksheets[0]
    cells = [["" if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)]
    assert cells[0] == list(lines[0])                        # the CSV's columns, in order
    assert cells[1:] == [list(line.values()) for line in lines]
    assert cells[1][cells[0].index("状态")] == "已送达"
    r = run("reprint", "--db", db, "--outstanding", "-q")
    assert "Reprinted 37 households" in r.output
    new_rows = manifest(out / "manifest.csv")
    assert new_rows[0]["code"] == code1                      # delivered: code kept
    assert new_rows[5]["code"] != rows[5]["code"]            # outstanding: new code
    r = run("confirm", rows[5]["code"], "--by", "李明", "--db", db, ok=False)
    assert "rejected" in r.output and "replaced" in r.output
    reprint_dir = next(out.glob("reprint-*"))
    assert (reprint_dir / "slips.pdf").is_file()


def test_failed_check_leaves_the_previous_batch_untouched(built, tmp_path):
    out, db = built
    before = (out / "manifest.csv").read_bytes()
    bad = write_csv(tmp_path / "bad.csv", [HEADER, [1, "", "", "沙湖小区", "1栋", "", "", "", "",
                                                    "", ""]])
    r = run("build", "-r", bad, "-t", "zh", "-o", out, "--db", db, ok=False)
    assert r.exit_code == 1 and "nothing was written" in r.stderr
    assert (out / "manifest.csv").read_bytes() == before


def test_letters_can_carry_the_code_and_its_qr(tmp_path):
    import io
    import zipfile

    import zxingcpp
    from PIL import Image

    lst = small_list(tmp_path, n=3)
    tpl = Document()
    tpl.add_paragraph("尊敬的{{ name }}{{ honorific }}:")
    tpl.add_paragraph("签收码 {{ code }},扫码确认:{{ qr }}")
    tpl.add_paragraph("{{ url }}")
    tpl.save(tmp_path / "with-code.docx")
    out = tmp_path / "out"
    # `letters` alone has no codes: check says so, before anything is written.
    r = run("letters", "-r", lst, "-t", tmp_path / "with-code.docx", "-o", out, ok=False)
    assert r.exit_code == 1 and "letterpress build" in r.stderr
    run("build", "-r", lst, "-t", tmp_path / "with-code.docx", "-o", out, "--date", "2020-02-24",
        "--db", f"sqlite:///{tmp_path / 'l.db'}", "--base-url", "http://192.168.1.20:8470", "-q")
    rows = manifest(out / "manifest.csv")
    for row in rows:
        letter = out / row["letter"]
        text = docx_text(letter)
        assert f"签收码 {row['code']}" in text and row["url"] in text
        with zipfile.ZipFile(letter) as z:
            media = [n for n in z.namelist() if n.startswith("word/media/")]
            assert len(media) == 1
            image = Image.open(io.BytesIO(z.read(media[0])))
        found = [b.text for b in zxingcpp.read_barcodes(image)]
        assert found == [row["url"]]
    assert docx_text(out / "letters.docx").count("签收码") == 3


def test_check_warns_about_characters_the_slip_font_cannot_draw(tmp_path):
    from conftest import require

    from letterpress.slips import fonts

    require(fonts.find_font(None).embedded, "no CJK TrueType font: install fonts-wqy-microhei")
    rows = [HEADER, [1, "王𪚥英", "奶奶", "沙湖小区", "1栋", "1单元", "101", "13800000001", "",
                     "李明", ""]]
    lst = write_csv(tmp_path / "rare.csv", rows, "utf-8-sig")
    r = run("check", "-r", lst, "-t", "zh")
    assert "𪚥" in r.output and "row 2" in r.output


def test_serve_says_which_ledger_and_prints_a_staff_link(built, monkeypatch):
    out, db = built
    calls = []
    monkeypatch.setattr("letterpress.server.run.serve",
                        lambda app, host, port, threads=8: calls.append((host, port)))
    r = run("serve", "--db", db, "--port", 8471)
    assert calls == [("127.0.0.1", 8471)]
    assert "Ledger: SQLite file" in r.output
    assert "http://127.0.0.1:8471/S/" in r.output
    assert "point at http://192.168.1.20:8470" in r.stderr     # the slips name another address


def test_serve_creates_a_missing_ledger_and_prints_the_first_setup_link(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    calls = []
    monkeypatch.setattr("letterpress.server.run.serve",
                        lambda app, host, port, threads=8: calls.append((host, port)))
    r = run("serve", "--db", f"sqlite:///{tmp_path}/new/ledger.db", "--port", 8472)
    assert calls == [("127.0.0.1", 8472)]
    assert (tmp_path / "new" / "ledger.db").is_file()
    assert "http://127.0.0.1:8472/staff/join/" in r.output
    again = run("staff", "add", "王芳", "--password", "long-enough-1", "--db",
                f"sqlite:///{tmp_path}/new/ledger.db")
    assert again.exit_code == 0
    r = run("serve", "--db", f"sqlite:///{tmp_path}/new/ledger.db", "--port", 8472)
    assert "/staff/join/" not in r.output and "http://127.0.0.1:8472/staff" in r.output


def test_purge_asks_then_removes_personal_data_and_keeps_counts(built):
    out, db = built
    rows = manifest(out / "manifest.csv")
    run("confirm", rows[0]["code"], "--by", rows[0]["volunteer"], "--db", db)
    r = CliRunner().invoke(main, ["purge", "--db", db], input="n\n")
    assert r.exit_code == 1 and "Nothing was changed" in r.output
    assert (out / "letters").is_dir()
    r = CliRunner().invoke(main, ["purge", "--db", db], input="y\n")
    assert r.exit_code == 0, r.output
    assert not any((out / name).exists() for name in ("letters", "letters.docx", "slips.pdf",
                                                      "runsheets", "manifest.csv"))
    status = json.loads(run("status", "--db", db, "--json").stdout)["batches"][0]
    assert (status["households"], status["delivered"]) == (40, 1)
    assert all(v["name"].startswith("volunteer ") for v in status["volunteers"])
    report = out.parent / "after.csv"
    run("report", "--db", db, "-o", report)
    text = report.read_text(encoding="utf-8-sig")
    assert rows[0]["name"] not in text and rows[1]["name"] not in text
    r = run("confirm", rows[1]["code"], "--by", "x", "--db", db, ok=False)
    assert "rejected" in r.output
    # nothing of a name is left anywhere in the ledger: not in its tables, not in the
    # names of the files it listed (letters, run sheets), not in a reprint plan
    import sqlite3

    with sqlite3.connect(db.removeprefix("sqlite:///")) as conn:
        conn.execute("VACUUM")
        everything = "\n".join(conn.iterdump())
    names = {r["name"] for r in rows} | {r["volunteer"] for r in rows if r["volunteer"]}
    assert not [n for n in names if n in everything]
    assert "written_files" in everything and "letters/" not in everything


def test_build_with_two_jobs_writes_run_sheets_beside_the_slips(tmp_path):
    import pypdf

    lst = small_list(tmp_path, n=210)
    out = tmp_path / "out"
    run("build", "-r", lst, "-t", "zh", "-o", out, "--db", f"sqlite:///{tmp_path / 'l.db'}",
        "--base-url", "http://192.168.1.20:8470", "--jobs", 2, "-q")
    sheets = sorted((out / "runsheets").iterdir())
    assert [p.name for p in sheets] == ["01-陈晓.pdf", "02-李明.pdf"]
    rows = manifest(out / "manifest.csv")
    text = "".join(page.extract_text() for page in pypdf.PdfReader(str(sheets[1])).pages)
    mine = [r for r in rows if r["volunteer"] == "李明"]
    assert len(mine) == 105 and all(r["name"] in text for r in mine)
    assert len(pypdf.PdfReader(str(out / "slips.pdf")).pages) == 27      # 210 slips, 8 a page


def slips_per_page(out: Path, codes) -> list:
    """How many of ``codes`` each page of slips.pdf shows."""
    import pypdf

    pages = pypdf.PdfReader(str(out / "slips.pdf")).pages
    return [sum(code in page.extract_text() for code in codes) for page in pages]


def test_a_layout_given_to_slips_wins_over_the_one_the_batch_was_built_with(tmp_path):
    lst, out, db = small_list(tmp_path, n=16), tmp_path / "out", f"sqlite:///{tmp_path / 'l.db'}"
    run("build", "-r", lst, "-t", "zh", "-o", out, "--db", db, "--layout", "a4-4", "-q")
    codes = [r["code"] for r in manifest(out / "manifest.csv")]
    assert slips_per_page(out, codes) == [4, 4, 4, 4]
    run("slips", "--db", db, "--layout", "a4-8", "-q")             # the default, given
    assert slips_per_page(out, codes) == [8, 8]
    run("slips", "--db", db, "--layout", "label-100x150", "-q")
    assert slips_per_page(out, codes) == [1] * 16
    run("slips", "--db", db, "--layout", "a4-8", "-q")             # back from labels
    assert slips_per_page(out, codes) == [8, 8]
    run("slips", "--db", db, "--layout", "a4-4", "-q")
    run("slips", "--db", db, "-q")                                 # not given: the last one
    assert slips_per_page(out, codes) == [4, 4, 4, 4]


def test_a_build_without_layout_uses_the_default_and_slips_keep_it(tmp_path):
    lst, out, db = small_list(tmp_path, n=10), tmp_path / "out", f"sqlite:///{tmp_path / 'l.db'}"
    run("build", "-r", lst, "-t", "zh", "-o", out, "--db", db, "-q")
    codes = [r["code"] for r in manifest(out / "manifest.csv")]
    assert slips_per_page(out, codes) == [8, 2]
    run("slips", "--db", db, "-q")
    assert slips_per_page(out, codes) == [8, 2]
