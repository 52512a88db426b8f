"""Staff accounts and console pages with Flask's test client (no JavaScript anywhere)."""
from __future__ import annotations

import io
import re
import shutil
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from consoletools import BAD_ROW, demo_bytes

from letterpress.cli import main
from letterpress.ledger import accounts
from letterpress.server import auth as auth_mod
from letterpress.server import close_app, create_app, setup_link

TITLE = "2020-02-24 青鱼嘴社区 慰问物资"
PASSWORD = "long-enough-1"


@pytest.fixture
def app(tmp_path):
    app = create_app(f"sqlite:///{tmp_path}/ledger.db", create=True,
                     rounds_dir=str(tmp_path / "rounds"), rate_limit=5)
    yield app
    close_app(app)


def _ledger(app):
    return app.extensions["letterpress"].ledger


def _csrf(response) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', response.get_data(as_text=True)).group(1)


def _sign_in(client, name="王芳", password=PASSWORD):
    csrf = _csrf(client.get("/staff/sign-in"))
    return client.post("/staff/sign-in", data={"name": name, "password": password, "csrf": csrf})


@pytest.fixture
def staff(app):
    accounts.add_staff(_ledger(app), "王芳", PASSWORD)
    client = app.test_client()
    assert _sign_in(client).status_code == 302
    return client


def test_pages_redirect_to_sign_in(app):
    client = app.test_client()
    for path in ("/staff", "/staff/new", "/staff/rounds/1", "/staff/rounds/1/check",
                 "/staff/people", "/staff/rounds/1/volunteers"):
        r = client.get(path)
        assert r.status_code == 302 and "/staff/sign-in" in r.headers["Location"], path


def test_first_setup_link_makes_the_first_account_once(app):
    link = setup_link(app, "http://localhost")
    path = link[len("http://localhost"):]
    client = app.test_client()
    page = client.get(path, headers={"Accept-Language": "zh-CN"})
    assert "首次设置" in page.get_data(as_text=True)
    csrf = _csrf(page)
    bad = client.post(path, data={"name": "王芳", "password": PASSWORD, "password2": "other",
                                  "csrf": csrf})
    assert bad.status_code == 400 and "不一致" in bad.get_data(as_text=True)
    ok = client.post(path, data={"name": "王芳", "password": PASSWORD, "password2": PASSWORD,
                                 "csrf": csrf})
    assert ok.status_code == 302 and client.get("/staff").status_code == 200
    assert accounts.staff_names(_ledger(app)) == ["王芳"]
    assert app.test_client().get(path).status_code == 401        # used up
    assert not accounts.check_password(_ledger(app), "王芳", "wrong")
    stored = accounts._get(_ledger(app), "staff:王芳")["hash"]
    assert stored.startswith(("scrypt:", "pbkdf2:")) and PASSWORD not in stored


def test_sign_in_is_rate_limited_like_code_guessing(app):
    accounts.add_staff(_ledger(app), "王芳", PASSWORD)
    client = app.test_client()
    for _ in range(5):
        assert _sign_in(client, password="wrong-password").status_code == 401
    blocked = _sign_in(client)          # even the right password waits now
    assert blocked.status_code == 429 and blocked.headers["Retry-After"]


def test_sessions_end_on_sign_out_after_12_hours_and_on_removal(app, staff, monkeypatch):
    assert staff.get("/staff").status_code == 200
    real = time.time
    monkeypatch.setattr(auth_mod.time, "time", lambda: real() + 12 * 3600 + 5)
    assert staff.get("/staff").status_code == 302
    monkeypatch.setattr(auth_mod.time, "time", real)
    assert _sign_in(staff).status_code == 302
    csrf = _csrf(staff.get("/staff"))
    assert staff.post("/staff/sign-out", data={"csrf": csrf}).status_code == 302
    assert staff.get("/staff").status_code == 302
    assert _sign_in(staff).status_code == 302
    accounts.remove_staff(_ledger(app), "王芳")
    assert staff.get("/staff").status_code == 302


def test_invite_and_remove_from_the_people_page(app, staff):
    csrf = _csrf(staff.get("/staff/people"))
    page = staff.post("/staff/people", data={"csrf": csrf, "do": "invite"})
    link = re.search(r'id="invite-link">([^<]+)<', page.get_data(as_text=True)).group(1)
    other = app.test_client()
    path = link.split("localhost", 1)[1]
    csrf2 = _csrf(other.get(path))
    assert other.post(path, data={"name": "李娜", "password": PASSWORD, "password2": PASSWORD,
                                  "csrf": csrf2}).status_code == 302
    assert accounts.staff_names(_ledger(app)) == ["李娜", "王芳"]
    staff.post("/staff/people", data={"csrf": csrf, "do": "remove", "name": "李娜"})
    assert accounts.staff_names(_ledger(app)) == ["王芳"]
    assert other.get("/staff").status_code == 302
    logged = [(a["who"], a["action"]) for a in accounts.actions(_ledger(app))]
    assert ("王芳", "invite") in logged and ("王芳", "remove_staff") in logged


def test_new_round_check_page_shows_the_bad_row_then_the_fix(app, staff):
    csrf = _csrf(staff.get("/staff/new"))
    r = staff.post("/staff/new", data={
        "csrf": csrf, "title": TITLE, "template_name": "zh", "lang": "zh", "layout": "a4-8",
        "date": "2020-02-24", "base_url": "http://192.0.2.10:8470",
        "recipients": (io.BytesIO(demo_bytes(bad=True)), "名单.xlsx")},
        content_type="multipart/form-data", headers={"Accept-Language": "zh-CN"})
    assert r.status_code == 302
    check = staff.get(r.headers["Location"], headers={"Accept-Language": "zh-CN"})
    html = check.get_data(as_text=True)
    assert "有错误，不能生成" in html and "missing_name" in html
    row = re.search(r'<tr class="error">(.*?)</tr>', html, re.S).group(1)
    assert re.search(rf'<td class="n"[^>]*>{BAD_ROW}</td>', row) and "姓名" in row
    assert "姓名为空" in row                       # the check's message in the page's language
    again = staff.post(r.headers["Location"].replace("/check", "/recipients"), data={
        "csrf": csrf, "recipients": (io.BytesIO(demo_bytes()), "名单.xlsx")},
        content_type="multipart/form-data")
    assert again.status_code == 302
    html = staff.get(r.headers["Location"], headers={"Accept-Language": "en"}).get_data(
        as_text=True)
    assert "Ready to build" in html and '<tr class="error">' not in html
    assert staff.get(r.headers["Location"].replace("/check", "/preview/slips.pdf")) \
        .headers["Content-Type"] == "application/pdf"


def test_new_round_form_errors_in_both_languages(app, staff):
    csrf = _csrf(staff.get("/staff/new"))
    for lang, words in (("zh-CN", "无法使用上传的文件"), ("en", "The upload cannot be used")):
        r = staff.post("/staff/new", data={"csrf": csrf, "title": "x",
                                           "recipients": (io.BytesIO(b"%PDF-1.7"), "a.xlsx")},
                       content_type="multipart/form-data", headers={"Accept-Language": lang})
        assert r.status_code == 400 and words in r.get_data(as_text=True)
    r = staff.post("/staff/new", data={"title": "x"})
    assert r.status_code == 400                                   # no CSRF token


def test_console_labels_exist_in_both_languages():
    """Every console string is in the catalogue (tests/test_i18n.py); the labels picked by a
    code (job states, staff actions, severities) have their Chinese too."""
    from letterpress import i18n as core
    from letterpress.server import i18n

    for group, keys in {"c.act": ("build", "reprint", "purge", "undo", "upload"),
                        "c.sev": ("error", "warning"), "c.job": ("queued", "running"),
                        "c.tpl": ("zh", "en")}.items():
        for key in keys:
            with core.using("en"):
                english = i18n.label(group, key)
            with core.using("zh"):
                chinese = i18n.label(group, key)
            assert english and chinese and chinese != english, (group, key)


def test_staff_cli_token_add_remove_revoke(tmp_path):
    db = f"sqlite:///{tmp_path}/cli.db"
    runner = CliRunner()
    made = runner.invoke(main, ["staff", "token", "--name", "张敏", "--expires", "2h", "--db", db])
    assert made.exit_code == 0, made.output
    token = made.stdout.strip()
    assert made.stdout == token + "\n" and token.startswith("lps1.")
    app = create_app(db)
    try:
        assert accounts.check_api_token(_ledger(app), token) == "张敏"
        assert runner.invoke(main, ["staff", "revoke", token, "--db", db]).exit_code == 0
        assert accounts.check_api_token(_ledger(app), token) is None
    finally:
        close_app(app)
    bad = runner.invoke(main, ["staff", "token", "--expires", "soon", "--db", db])
    assert bad.exit_code == 2 and "duration" in bad.output
    added = runner.invoke(main, ["staff", "add", "王芳", "--db", db], input=f"{PASSWORD}\n"
                          f"{PASSWORD}\n")
    assert added.exit_code == 0, added.output
    assert runner.invoke(main, ["staff", "list", "--db", db]).stdout == "王芳\n"
    assert runner.invoke(main, ["staff", "remove", "王芳", "--db", db]).exit_code == 0
    gone = runner.invoke(main, ["staff", "remove", "王芳", "--db", db])
    assert gone.exit_code == 1 and "no staff account" in gone.output


def test_volunteers_page_badges_sheet_and_reissue(app, staff):
    from letterpress.ledger import rounds

    token = accounts.new_api_token(_ledger(app), "王芳")
    auth = {"Authorization": f"Bearer {token}"}
    made = staff.post("/api/rounds", headers=auth, data={
        "title": TITLE, "base_url": "http://192.0.2.10:8470",
        "recipients": (io.BytesIO(demo_bytes()), "名单.xlsx")})
    rid = made.get_json()["id"]
    job = staff.post(f"/api/rounds/{rid}/build", headers=auth, json={}).get_json()["job"]
    assert app.extensions["letterpress_jobs"].wait(job, 300).state == "done"
    page = staff.get(f"/staff/rounds/{rid}/volunteers", headers={"Accept-Language": "zh-CN"})
    html = page.get_data(as_text=True)
    assert html.count('class="card badge"') == 8 and "陈思远" in html
    png = staff.get(f"/staff/rounds/{rid}/badge/1.png")
    assert png.headers["Content-Type"] == "image/png" and png.data.startswith(b"\x89PNG")
    assert staff.get(f"/staff/rounds/{rid}/badge/99.png").status_code == 404
    sheet = staff.get(f"/staff/rounds/{rid}/badges").get_data(as_text=True)
    assert sheet.count('class="printbadge"') == 8
    batch_id = rounds.get(_ledger(app), rid)["batch_id"]
    old = _ledger(app).volunteers(batch_id)[0]
    assert app.test_client().get(f"/V/{old.token}").status_code == 302
    csrf = _csrf(page)
    again = staff.post(f"/staff/rounds/{rid}/volunteers/revoke",
                       data={"csrf": csrf, "name": old.name}, headers={"Accept-Language": "zh-CN"})
    assert again.status_code == 200 and "旧证已作废" in again.get_data(as_text=True)
    assert app.test_client().get(f"/V/{old.token}").status_code == 401
    new = _ledger(app).volunteers(batch_id)[0]
    assert new.token != old.token and new.url in again.get_data(as_text=True)
    assert app.test_client().get(f"/V/{new.token}").status_code == 302
    assert ("王芳", "reissue_badge") in [(a["who"], a["action"])
                                       for a in accounts.actions(_ledger(app))]



def _slow_soffice(monkeypatch, started, release, converted):
    """LibreOffice stand-in that waits for ``release`` and makes a real one-page PDF."""
    from letterpress.printing import libreoffice

    def convert(paths, out, **kw):
        converted.append(Path(paths[0]).read_bytes())
        started.set()
        assert release.wait(30)
        shutil.copyfile(Path(paths[0]).parent.parent / "preview" / "slips.pdf",
                        out / "letter.pdf")

    monkeypatch.setattr(libreoffice, "find_soffice", lambda *a, **k: "/usr/bin/soffice")
    monkeypatch.setattr(libreoffice, "convert", convert)


def test_a_new_upload_while_the_letter_picture_is_made_loses_nothing(app, staff, monkeypatch,
                                                                     tmp_path):
    """The first list's picture job is still converting when the corrected list comes: the new
    preview is whole, both jobs end without an error, nothing is left behind."""
    from letterpress.server.console_ops import jobs

    started, release, converted = threading.Event(), threading.Event(), []
    _slow_soffice(monkeypatch, started, release, converted)
    csrf = _csrf(staff.get("/staff/new"))
    r = staff.post("/staff/new", data={
        "csrf": csrf, "title": TITLE, "template_name": "zh", "lang": "zh", "layout": "a4-8",
        "date": "2020-02-24", "base_url": "http://192.0.2.10:8470",
        "recipients": (io.BytesIO(demo_bytes(bad=True)), "名单.xlsx")},
        content_type="multipart/form-data")
    assert r.status_code == 302 and started.wait(30)
    with app.app_context():
        first = jobs().for_round(1, "preview")
    again = staff.post(r.headers["Location"].replace("/check", "/recipients"), data={
        "csrf": csrf, "recipients": (io.BytesIO(demo_bytes()), "名单.xlsx")},
        content_type="multipart/form-data")
    assert again.status_code == 302
    release.set()
    with app.app_context():
        second = jobs().for_round(1, "preview")
        assert second.id != first.id
        for job in (first, second):
            assert jobs().wait(job.id, timeout=60).state == "done", job.error
    pdir = tmp_path / "rounds/1/preview"
    assert {"letter.docx", "letter.txt", "slips.pdf", "slips.png", "letter.png"} <= {
        p.name for p in pdir.iterdir()}
    assert len(converted) >= 2
    assert staff.get(r.headers["Location"].replace("/check", "/preview/slips.pdf")) \
        .headers["Content-Type"] == "application/pdf"
    assert not [p.name for p in (tmp_path / "rounds/1").iterdir() if p.name.startswith(".")]


def test_a_letter_picture_of_a_replaced_preview_is_not_shown(monkeypatch, tmp_path):
    from letterpress.server import roundwork

    started, release, converted = threading.Event(), threading.Event(), []
    _slow_soffice(monkeypatch, started, release, converted)
    pdir = tmp_path / "preview"
    pdir.mkdir()
    (pdir / "letter.docx").write_bytes(b"first letter")
    from reportlab.pdfgen import canvas

    page = canvas.Canvas(str(pdir / "slips.pdf"))
    page.drawString(72, 720, "a slip")
    page.save()
    worker = threading.Thread(target=roundwork.letter_picture, args=(tmp_path, lambda *a: None))
    worker.start()
    assert started.wait(30)
    (pdir / "letter.docx").write_bytes(b"the corrected letter")
    release.set()
    worker.join(30)
    assert converted == [b"first letter"]
    assert not (pdir / "letter.png").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["preview"]
    assert sorted(p.name for p in pdir.iterdir()) == ["letter.docx", "slips.pdf"]


def test_closing_the_app_lets_the_running_job_finish_and_drops_the_queued_ones(tmp_path):
    """No console job touches the ledger after the app let go of it."""
    from letterpress.server.jobs import JobQueue

    queue, release, order = JobQueue(), threading.Event(), []

    def slow(progress):
        assert release.wait(30)
        order.append("slow")

    running = queue.submit(1, "build", slow)
    waiting = queue.submit(2, "build", lambda progress: order.append("late"))
    for _turn in range(300):
        if running.state == "running":
            break
        time.sleep(0.01)
    closer = threading.Thread(target=queue.close)
    closer.start()
    time.sleep(0.2)
    assert closer.is_alive()                     # waits for the running job
    release.set()
    closer.join(30)
    assert order == ["slow"] and running.state == "done"
    assert waiting.state == "failed" and waiting.error_code == "server_stopped"
    with pytest.raises(RuntimeError):
        queue.submit(3, "build", lambda progress: None)
