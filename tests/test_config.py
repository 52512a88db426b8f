import datetime as dt

import pytest

from letterpress import config
from letterpress.errors import ConfigError


def write(tmp_path, text):
    p = tmp_path / "letterpress.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_file_values_and_flags_win(tmp_path):
    p = write(tmp_path, """
[batch]
title = "2020-02-24 测试批次"
org = "示例街道办"
date = 2020-02-24
recipients = "list.xlsx"
template = "zh"
jobs = 2
slip_fields = "category, phone"

[columns]
name = ["户主", "老人姓名"]
phone = "手机号码"

[context]
hotline = "027-0000 0000"
""")
    s = config.load(p, org="另一个单位", jobs=None)
    assert s.title == "2020-02-24 测试批次"
    assert s.org == "另一个单位"                 # the flag wins
    assert s.date == dt.date(2020, 2, 24)
    assert s.recipients == tmp_path / "list.xlsx"  # relative to the config file
    assert s.template == "zh"
    assert s.jobs == 2
    assert s.slip_fields == ("category", "phone")
    assert s.columns["name"] == ("户主", "老人姓名")
    assert s.columns["phone"] == ("手机号码",)
    assert s.context["hotline"] == "027-0000 0000"


def test_template_path_in_config_is_relative_to_it(tmp_path):
    p = write(tmp_path, '[batch]\ntemplate = "my letter.docx"\n')
    assert config.load(p).template == str(tmp_path / "my letter.docx")


@pytest.mark.parametrize("text, code", [
    ("[batch]\ntitel = 'x'\n", "bad_config"),
    ("[colums]\nname = 'x'\n", "bad_config"),
    ("[columns]\nnaam = 'x'\n", "bad_config"),
    ("[batch\n", "bad_config"),
    ("[batch]\ndate = '24/02/2020'\n", "bad_date"),
    ("[batch]\nlang = 'fr'\n", "bad_config"),
    ("[batch]\nlayout = 'a5'\n", "bad_config"),
])
def test_config_mistakes_are_reported(tmp_path, text, code):
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        config.load(p)
    assert exc.value.code == code
    assert str(p) in str(exc.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError) as exc:
        config.load(tmp_path / "nope.toml")
    assert exc.value.code == "no_config"


def test_db_from_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LETTERPRESS_DB", "sqlite:///elsewhere.db")
    assert config.load().db == "sqlite:///elsewhere.db"
    assert config.load(db="sqlite:///flag.db").db == "sqlite:///flag.db"
