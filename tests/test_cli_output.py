"""The exact output of `letterpress check` and `letterpress status`, line by line.

Like sqlite-utils' CLI tests, these assert the whole output, so any change to what a
user reads shows up here. English is forced (another locale may print Chinese).
"""
from __future__ import annotations

import csv
import textwrap

import pytest
from click.testing import CliRunner
from clitools import manifest
from conftest import FIXTURES

from letterpress.cli import main

HEADER = ["序号", "姓名", "称呼", "小区", "楼栋", "单元", "房号", "联系电话", "人员类别", "志愿者", "备注"]


@pytest.fixture
def invoke(monkeypatch, tmp_path):
    for name in ("LC_ALL", "LC_MESSAGES", "LANGUAGE", "LETTERPRESS_DB"):
        monkeypatch.delenv(name, raising=False)
    env = {"LETTERPRESS_LANG": "en", "LANG": "C.UTF-8"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)

    def invoke(*args):
        return CliRunner(env=env).invoke(main, [str(a) for a in args], catch_exceptions=False)

    return invoke


def test_check_of_a_good_list(invoke, tmp_path):
    (tmp_path / "list.csv").write_bytes((FIXTURES / "qingyuzui-excel-gbk.csv").read_bytes())
    result = invoke("check", "-r", "list.csv", "-t", "zh")
    assert result.exit_code == 0
    assert result.stdout == ("list.csv (gb18030): 12 households, 8 volunteers; "
                             "template letter-zh.docx: 0 errors, 0 warnings\n")
    assert result.stderr == ""


def test_check_lists_every_problem_of_a_chinese_list(invoke, tmp_path):
    rows = [HEADER,
            [1, "王秀英", "奶奶", "沙湖小区", "1栋", "1单元", "101", "13800000001", "", "李明", ""],
            [2, "", "爷爷", "沙湖小区", "2栋", "1单元", "102", "13800000002", "", "李明", ""],
            [1, "张桂兰", "奶奶", "沙湖小区", "3栋", "1单元", "103", "1.38E+10", "", "李明", ""],
            ["合计", "", "", "", "", "", "", "", "", "", ""]]
    with open(tmp_path / "bad.csv", "w", encoding="gbk", newline="") as fh:
        csv.writer(fh).writerows(rows)
    result = invoke("check", "-r", "bad.csv", "-t", "zh")
    assert result.exit_code == 1
    assert result.stdout == textwrap.dedent("""\
        error   bad.csv, row 3, column '姓名': the name is empty
                how to fix: fill in the household's name, or delete the row if it is not a household
        error   bad.csv, row 4, column '联系电话': the phone '1.38E+10' is in scientific notation: Excel has cut the number short
                how to fix: the lost digits cannot be recovered from this file; copy the numbers from the original workbook, or format the column as Text and type them again
        error   bad.csv, row 4, column '序号': id '1' appears in row 2 and row 4
                how to fix: give every household its own id; an id must not change between rounds
        error   bad.csv, row 5, column '序号': this looks like a summary row ('合计'), not a household
                how to fix: delete the row; letterpress counts the households itself
        warning letter-zh.docx: {{ category }} is used by the template but empty in every row
                how to fix: fill the column or take the field out of the template
        bad.csv (gb18030): 3 households, 1 volunteer; template letter-zh.docx: 4 errors, 1 warning
        """)
    assert result.stderr == ""


def test_status_of_a_round(invoke, tmp_path):
    (tmp_path / "list.csv").write_bytes((FIXTURES / "qingyuzui-excel-gbk.csv").read_bytes())
    db = f"sqlite:///{tmp_path / 'l.db'}"
    built = invoke("build", "-r", "list.csv", "-t", "zh", "-o", "out", "--db", db, "--date",
                   "2020-02-24", "--batch", "2020-02-24 青鱼嘴社区 慰问物资",
                   "--base-url", "http://192.168.1.20:8470", "-q")
    assert built.exit_code == 0, built.output
    rows = manifest(tmp_path / "out" / "manifest.csv")
    first, second = rows[0], rows[1]
    assert invoke("confirm", first["code"], "--by", first["volunteer"], "--db", db).exit_code == 0
    assert invoke("confirm", second["code"], "--by", second["volunteer"], "--outcome",
                  "not-home", "--db", db).exit_code == 0
    result = invoke("status", "--db", db)
    assert result.exit_code == 0
    assert result.stdout == textwrap.dedent("""\
        2020-02-24 青鱼嘴社区 慰问物资 (2020-02-24): 12 households: 1 delivered, 1 failed, 10 outstanding, 0 withdrawn
          李明              2 households     1 delivered     1 failed     0 outstanding
          陈晓              2 households     0 delivered     0 failed     2 outstanding
          王磊              2 households     0 delivered     0 failed     2 outstanding
          赵静              2 households     0 delivered     0 failed     2 outstanding
          刘洋              1 households     0 delivered     0 failed     1 outstanding
          周婷              1 households     0 delivered     0 failed     1 outstanding
          吴昊              1 households     0 delivered     0 failed     1 outstanding
          孙悦              1 households     0 delivered     0 failed     1 outstanding
        """)
    assert result.stderr == f"Ledger: SQLite file {tmp_path / 'l.db'}\n"


def test_status_of_an_empty_ledger_and_of_none(invoke, tmp_path):
    result = invoke("status", "--db", f"sqlite:///{tmp_path / 'none.db'}")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (f"Error: there is no ledger at {tmp_path / 'none.db'}\n"
                             "  How to fix: run `letterpress build` first, or check --db (or LETTERPRESS_DB)\n")
