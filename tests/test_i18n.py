"""Languages: the choice (environment for the CLI, browser for pages) and the catalogues."""
from __future__ import annotations

from pathlib import Path

import pytest
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

from letterpress import i18n
from letterpress.i18n import _, ngettext, pgettext

ROOT = Path(__file__).resolve().parent.parent


def _tools():
    from letterpress import catalogues

    return catalogues


def test_every_message_has_its_chinese_and_nothing_is_stale_or_fuzzy():
    tools = _tools()
    template = tools.extract()
    assert len(template) > 100            # the extraction really found the messages
    problems = tools.problems(template)
    assert problems == [], "\n".join(problems[:40]) + "\nRun `make catalogues`, then translate."


def test_catalogue_problems_are_found(tmp_path, monkeypatch):
    """The completeness check itself fails on a missing, fuzzy, stale or mismatched entry."""
    tools = _tools()
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import write_po

    template = Catalog(domain="letterpress")
    for msg in ("One", "Row %(row)s", "Two", "Fuzzy"):
        template.add(msg)
    template.add(("%(num)d house", "%(num)d houses"))
    po = Catalog(locale="zh", domain="letterpress")
    po.add("One", "一")
    po.add("Row %(row)s", "第 %(line)s 行", flags=["python-format"])
    po.add("Fuzzy", "模糊", flags=["fuzzy"])
    po.add("Gone", "旧")
    po.add(("%(num)d house", "%(num)d houses"), ("",))
    monkeypatch.setattr(tools, "LOCALE", tmp_path)
    path = tools.po_path("zh")
    path.parent.mkdir(parents=True)
    with open(path, "wb") as fh:
        write_po(fh, po)
    found = "\n".join(tools.problems(template))
    assert "'Two' is not in the catalogue" in found
    assert "'Fuzzy' is marked fuzzy" in found
    assert "'Gone' is stale" in found
    assert "Row %(row)s" in found and "line" in found           # placeholder mismatch
    assert "'%(num)d house' has no translation" in found
    assert "'One'" not in found


@pytest.mark.parametrize("env, lang", [
    ({}, "en"),
    ({"LANG": "zh_CN.UTF-8"}, "zh"),
    ({"LANG": "zh_TW.Big5"}, "zh"),
    ({"LC_MESSAGES": "zh_CN", "LANG": "en_GB.UTF-8"}, "zh"),
    ({"LC_ALL": "zh_HK.UTF-8", "LANG": "en_US.UTF-8"}, "zh"),
    ({"LC_ALL": "C.UTF-8", "LANG": "zh_CN.UTF-8"}, "en"),       # LC_ALL wins, as for POSIX
    ({"LANG": "de_DE.UTF-8"}, "en"),
    ({"LETTERPRESS_LANG": "zh", "LANG": "en_US.UTF-8"}, "zh"),
    ({"LETTERPRESS_LANG": "en", "LC_ALL": "zh_CN.UTF-8"}, "en"),
    ({"LETTERPRESS_LANG": "zh-CN"}, "zh"),
    ({"LETTERPRESS_LANG": "xx", "LANG": "zh_CN"}, "zh"),
])
def test_cli_language_from_the_environment(env, lang):
    assert i18n.lang_from_env(env) == lang


def _accept(header):
    return LanguageAccept(parse_accept_header(header)) if header is not None else None


@pytest.mark.parametrize("switch, cookie, header, lang", [
    (None, None, "zh-CN,zh;q=0.9,en;q=0.8", "zh"),
    (None, None, "zh-TW", "zh"),
    (None, None, "en-GB,en;q=0.9", "en"),
    (None, None, "fr-FR,fr;q=0.9", "en"),
    (None, None, None, "zh"),
    (None, "en", "zh-CN", "en"),
    ("zh", "en", "en-US", "zh"),
    ("xx", None, "en-US", "en"),
])
def test_page_language_from_switch_cookie_and_browser(switch, cookie, header, lang):
    assert i18n.lang_for_request(switch, cookie, _accept(header)) == lang


def test_gettext_fills_named_placeholders_in_either_language():
    with i18n.using("en"):
        assert _("Logged in as %(name)s", name="李明") == "Logged in as 李明"
        assert pgettext("history", "Delivered") == "Delivered"
    with i18n.using("zh"):
        assert _("Logged in as %(name)s", name="李明") == "已登录：李明"
        assert pgettext("history", "Delivered") == "已签收"
        assert pgettext("outcome", "Delivered") == "已送达"
        assert _("A message nobody translated") == "A message nobody translated"


def test_ngettext_english_plural_and_chinese_single_form():
    text = ("%(households)s households: %(delivered)s delivered, %(failed)s failed, "
            "%(outstanding)s outstanding")
    with i18n.using("en"):
        assert ngettext("%(num)d item", "%(num)d items", 1) == "1 item"
        assert ngettext("%(num)d item", "%(num)d items", 3) == "3 items"
    with i18n.using("zh"):
        assert _(text, households=3, delivered=1, failed=1, outstanding=1).startswith("共 3 户")


def test_using_restores_the_language_and_rejects_unknown_ones(monkeypatch):
    monkeypatch.setenv("LETTERPRESS_LANG", "en")
    with i18n.using("zh"):
        assert i18n.current_lang() == "zh"
    assert i18n.current_lang() == "en"
    with pytest.raises(ValueError):
        i18n.set_lang("fr")


def test_the_catalogue_ships_inside_the_package():
    assert i18n.catalogue_path("zh").is_file()
    assert i18n.catalogue_path("zh").is_relative_to(Path(i18n.__file__).parent)
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"locale/*/LC_MESSAGES/*.po"' in pyproject


@pytest.mark.parametrize("header, shown", [("zh-TW,zh;q=0.9", "扫码登记送达"),
                                           ("zh-CN", "扫码登记送达"),
                                           ("fr-FR,fr;q=0.8", "Scan to record deliveries"),
                                           ("en-US", "Scan to record deliveries")])
def test_pages_follow_the_browser_and_switch(tmp_path, header, shown):
    from letterpress.ledger import Ledger
    from letterpress.server import close_app, create_app

    url = f"sqlite:///{tmp_path / 'l.db'}"
    Ledger.open(url, create=True).close()
    app = create_app(url)
    try:
        client = app.test_client()
        html = client.get("/", headers={"Accept-Language": header}).get_data(as_text=True)
        assert shown in html
        other = "en" if "扫码" in shown else "zh"
        switched = client.get(f"/?lang={other}", headers={"Accept-Language": header})
        assert (shown not in switched.get_data(as_text=True)) and "lang=" in \
            switched.headers["Set-Cookie"]
        # The cookie remembers the switch on the next page.
        again = client.get("/", headers={"Accept-Language": header}).get_data(as_text=True)
        assert shown not in again
    finally:
        close_app(app)


def test_progress_stages_have_labels_in_both_languages():
    for stage in ("letters", "slips", "run sheets", "print packs", "pdf", "preview"):
        with i18n.using("zh"):
            chinese = i18n.stage_label(stage)
        with i18n.using("en"):
            english = i18n.stage_label(stage)
        assert chinese and english and not any("a" <= ch <= "z" for ch in chinese)
        assert chinese != english or stage == "pdf"
    assert i18n.stage_label("letters.pdf") == "letters.pdf"      # a file name stays as it is


def test_a_background_job_speaks_the_language_of_whoever_started_it():
    from letterpress.errors import InputError
    from letterpress.server.jobs import JobQueue

    def work(progress):
        raise InputError(_("the file is empty"), hint=_("add one row per household below the "
                                                        "header"))

    jobs = JobQueue()
    with i18n.using("zh"):
        job = jobs.submit(1, "build", work)
    assert jobs.wait(job.id, timeout=30).state == "failed"
    assert "文件是空的" in job.error and "修改方法" in job.error


@pytest.mark.parametrize("source, english, chinese", [
    ("{% if a %}x", "{% if %} is never closed: its {% endif %} is missing", "没有结束"),
    ("{% endfor %}", "{% endfor %} closes nothing", "缺少与它配对的开始标签"),
    ("{% if a %}x{% endfor %}", "comes before the {% if %} above it is closed", "还没有结束"),
    ("{{ a }", "unexpected '}'", "多出了 '}'"),
    ("{{ a b }}", "holds more than one name ('b' is left over)", "多出了 'b'"),
])
def test_jinja_syntax_errors_are_explained(source, english, chinese):
    from jinja2 import Environment, TemplateSyntaxError

    from letterpress.docx.locate import explain_syntax

    with pytest.raises(TemplateSyntaxError) as caught:
        Environment().parse(source)
    with i18n.using("en"):
        assert english in explain_syntax(caught.value.message)
    with i18n.using("zh"):
        assert chinese in explain_syntax(caught.value.message)
    assert explain_syntax("something else entirely") == "something else entirely"
