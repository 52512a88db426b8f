"""The command in Chinese: LETTERPRESS_LANG=zh or a zh locale, installed or not."""
from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from letterpress.cli import main

HEADER = ["序号", "姓名", "称呼", "小区", "楼栋", "单元", "房号", "联系电话", "人员类别", "志愿者",
          "备注"]
CJK = re.compile(r"[\u4e00-\u9fff]")


def invoke(env, *args):
    result = CliRunner().invoke(main, [str(a) for a in args], env=env, catch_exceptions=False)
    assert "Traceback" not in result.output + result.stderr
    return result


ZH_ENVS = [{"LETTERPRESS_LANG": "zh"},
           {"LETTERPRESS_LANG": "", "LC_ALL": "", "LC_MESSAGES": "", "LANG": "zh_CN.UTF-8"},
           {"LETTERPRESS_LANG": "", "LC_ALL": "zh_TW.UTF-8", "LANG": "en_US.UTF-8"}]


@pytest.mark.parametrize("env", ZH_ENVS)
def test_help_is_chinese_under_a_chinese_locale(env):
    r = invoke(env, "--help")
    assert r.exit_code == 0
    assert "用法" in r.output and "选项" in r.output and "命令" in r.output
    assert "检查名单和模板" in r.output                 # the check command's summary
    assert "Show this message and exit" not in r.output
    sub = invoke(env, "build", "--help")
    assert "收件人名单" in sub.output and "取件单版式" in sub.output
    assert "Recipient list" not in sub.output


def test_help_is_english_otherwise_and_switches_back():
    assert "检查名单" in invoke({"LETTERPRESS_LANG": "zh"}, "--help").output
    r = invoke({"LETTERPRESS_LANG": "", "LC_ALL": "", "LC_MESSAGES": "", "LANG": "C.UTF-8"},
               "build", "--help")
    assert "Recipient list" in r.output and "Usage:" in r.output and not CJK.search(
        r.output.replace("肉制品、蔬菜", ""))


def test_a_usage_mistake_is_explained_in_chinese():
    r = invoke({"LETTERPRESS_LANG": "zh"}, "check", "--layout", "x")
    assert r.exit_code == 2
    assert "没有 '--layout' 这个选项" in r.stderr and "查看帮助" in r.stderr
    r = invoke({"LETTERPRESS_LANG": "zh"}, "confirm", "K7Q2M-9XD3T-H")
    assert r.exit_code == 2 and "请用 --by 志愿者姓名" in r.stderr


def _list(tmp_path: Path, rows) -> Path:
    path = tmp_path / "list.csv"
    with open(path, "w", encoding="gbk", newline="") as fh:
        csv.writer(fh).writerows([HEADER, *rows])
    return path


def test_build_summary_in_chinese(tmp_path):
    rows = [[i, f"王{i}英", "奶奶", "沙湖小区", f"{i}栋", "1单元", f"{i}01", f"1380000{i:04d}",
             "独居老人", ["李明", "陈晓"][i % 2], ""] for i in range(1, 4)]
    lst = _list(tmp_path, rows)
    r = invoke({"LETTERPRESS_LANG": "zh"}, "build", "-r", lst, "-t", "zh", "--batch", "测试批次",
               "--out", tmp_path / "out", "--db", f"sqlite:///{tmp_path / 'l.db'}", "-q",
               "--base-url", "http://192.0.2.1:8470")
    assert r.exit_code == 0, r.output + r.stderr
    assert "已生成“测试批次”：3 户，2 名志愿者，3 封信" in r.output
    assert "编码：新发 3 个" in r.output
    assert "台账：" in r.stderr
    # The data values stay as they are.
    assert "测试批次" in r.output and "http://192.0.2.1:8470/H/" in r.output


def test_check_problems_hints_and_summary_in_chinese(tmp_path):
    rows = [[1, "王秀英", "奶奶", "沙湖小区", "1栋", "1单元", "101", "13800000001", "", "李明", ""],
            [2, "", "爷爷", "沙湖小区", "2栋", "1单元", "102", "13800000002", "", "李明", ""],
            [3, "张桂兰", "奶奶", "沙湖小区", "3栋", "1单元", "103", "1.38E+10", "", "李明", ""]]
    lst = _list(tmp_path, rows)
    r = invoke({"LETTERPRESS_LANG": "zh"}, "check", "-r", lst, "-t", "zh")
    assert r.exit_code == 1
    out = r.output
    assert "错误" in out and "第 3 行" in out and "“姓名”列" in out and "姓名为空" in out
    assert "修改方法：请填写该户姓名" in out
    assert "电话 '1.38E+10' 变成了科学计数法" in out           # the data value stays as it is
    assert "3 户，1 名志愿者；模板 letter-zh.docx：2 个错误" in out
    assert "row 3" not in out and "how to fix" not in out


def test_a_library_error_in_chinese_and_english(tmp_path):
    missing = tmp_path / "没有这个文件.xlsx"
    zh = invoke({"LETTERPRESS_LANG": "zh"}, "check", "-r", missing, "-t", "zh")
    assert zh.exit_code == 1
    assert "错误：" in zh.stderr and "收件人名单" in zh.stderr and "不存在" in zh.stderr
    assert "修改方法：请检查路径和文件名" in zh.stderr and str(missing) in zh.stderr
    en = invoke({"LETTERPRESS_LANG": "en"}, "check", "-r", missing, "-t", "zh")
    assert "Error:" in en.stderr and "does not exist" in en.stderr and "How to fix:" in en.stderr
    assert not CJK.search(en.stderr.replace(str(missing), ""))


def test_staff_commands_in_chinese(tmp_path):
    db = f"sqlite:///{tmp_path / 'l.db'}"
    r = invoke({"LETTERPRESS_LANG": "zh"}, "staff", "--help")
    assert "网页工作台的工作人员账号" in r.output and "创建工作人员账号" in r.output
    r = invoke({"LETTERPRESS_LANG": "zh"}, "staff", "add", "张敏", "--password",
               "correct horse battery", "--db", db)
    assert r.exit_code == 0 and r.output == "已创建工作人员账号 张敏。\n"
    r = invoke({"LETTERPRESS_LANG": "zh"}, "staff", "token", "--expires", "soon", "--db", db)
    assert r.exit_code == 2 and "'soon' 不是有效的时长" in r.stderr
