"""The staff console's JSON API with Flask's test client: every status code it documents."""
from __future__ import annotations

import datetime as dt
import io
import threading
import zipfile
from pathlib import Path

import pytest
from consoletools import BAD_ROW, demo_bytes

from letterpress.ledger import accounts
from letterpress.server import close_app, create_app, setup_link

TITLE = "2020-02-24 青鱼嘴社区 慰问物资"


@pytest.fixture
def app(tmp_path):
    app = create_app(f"sqlite:///{tmp_path}/ledger.db", create=True,
                     rounds_dir=str(tmp_path / "rounds"), upload_limit=2 * 1024 * 1024)
    yield app
    close_app(app)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def auth(app):
    token = accounts.new_api_token(app.extensions["letterpress"].ledger, "张敏")
    return {"Authorization": f"Bearer {token}"}


def _create(client, auth, data=None, name="list.xlsx", title=TITLE, **fields):
    form = {"title": title, "date": "2020-02-24", "org": "青鱼嘴社区志愿服务队",
            "package": "肉制品、蔬菜", "base_url": "http://192.0.2.10:8470",
            "recipients": (io.BytesIO(demo_bytes() if data is None else data), name)}
    form.update(fields)
    return client.post("/api/rounds", headers=auth, data=form,
                       content_type="multipart/form-data")


def _wait(app, job_id):
    return app.extensions["letterpress_jobs"].wait(job_id, timeout=300)


def _built(app, client, auth):
    rid = _create(client, auth).get_json()["id"]
    job = client.post(f"/api/rounds/{rid}/build", headers=auth, json={"pdf": False}).get_json()
    assert _wait(app, job["job"]).state == "done"
    return rid


def _error(response, status, code):
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["error"] == code
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["problems"], list)
    return body


# --- auth ----------------------------------------------------------------------------------------

def test_every_endpoint_answers_401_json_without_auth(client):
    for method, path in [("post", "/api/rounds"), ("get", "/api/rounds/1"),
                         ("put", "/api/rounds/1/recipients"), ("post", "/api/rounds/1/build"),
                         ("get", "/api/jobs/x"), ("get", "/api/rounds/1/files/slips.pdf"),
                         ("post", "/api/rounds/1/reprint"), ("delete", "/api/rounds/1")]:
        _error(getattr(client, method)(path), 401, "not_authorised")
    _error(client.get("/api/rounds/1", headers={"Authorization": "Bearer lps1.x.y"}), 401,
           "not_authorised")


def test_revoked_and_expired_tokens_are_refused(app, client):
    ledger = app.extensions["letterpress"].ledger
    token = accounts.new_api_token(ledger, "张敏")
    assert client.get("/api/rounds", headers={"Authorization": f"Bearer {token}"}) \
        .status_code == 200
    accounts.revoke_api_token(ledger, token)
    _error(client.get("/api/rounds", headers={"Authorization": f"Bearer {token}"}), 401,
           "not_authorised")
    old = accounts.new_api_token(ledger, "张敏", dt.timedelta(seconds=-1))
    _error(client.get("/api/rounds", headers={"Authorization": f"Bearer {old}"}), 401,
           "not_authorised")
    forged = token.rsplit(".", 1)[0] + ".AAAA"
    _error(client.get("/api/rounds", headers={"Authorization": f"Bearer {forged}"}), 401,
           "not_authorised")


def test_a_staff_session_needs_the_csrf_header_for_changes(app, client):
    ledger = app.extensions["letterpress"].ledger
    accounts.add_staff(ledger, "王芳", "long-enough-1")
    page = client.get("/staff/sign-in")
    csrf = _csrf(page.get_data(as_text=True))
    assert client.post("/staff/sign-in", data={"name": "王芳", "password": "long-enough-1",
                                               "csrf": csrf}).status_code == 302
    assert client.get("/api/rounds").status_code == 200
    csrf = _csrf(client.get("/staff").get_data(as_text=True))     # a new one after sign-in
    form = {"title": TITLE, "recipients": (io.BytesIO(demo_bytes()), "a.xlsx")}
    _error(client.post("/api/rounds", data=form, content_type="multipart/form-data"), 403,
           "csrf")
    form = {"title": TITLE, "recipients": (io.BytesIO(demo_bytes()), "a.xlsx")}
    made = client.post("/api/rounds", data=form, content_type="multipart/form-data",
                       headers={"X-CSRF-Token": csrf})
    assert made.status_code == 201
    assert accounts.actions(ledger, 5)[0]["who"] == "王芳"


def _csrf(html: str) -> str:
    import re
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


# --- POST /api/rounds --------------------------------------------------------------------------

def test_create_round_201_with_its_check(client, auth):
    r = _create(client, auth)
    assert r.status_code == 201
    body = r.get_json()
    assert set(body) == {"id", "title", "households", "problems", "can_build"}
    assert body["title"] == TITLE and body["households"] == 40 and body["can_build"] is True
    assert all(p["severity"] == "warning" for p in body["problems"])


def test_create_round_reads_an_xlsx_named_csv_as_xlsx(client, auth):
    r = _create(client, auth, name="名单.csv")
    assert r.status_code == 201 and r.get_json()["households"] == 40


def test_create_round_reports_a_bad_row_with_its_row_and_column(client, auth):
    body = _create(client, auth, demo_bytes(bad=True)).get_json()
    assert body["can_build"] is False
    first = body["problems"][0]
    assert first["severity"] == "error" and first["code"] == "missing_name"
    assert first["row"] == BAD_ROW and first["column"] == "姓名" and first["hint"]


def test_create_round_409_for_a_title_taken(client, auth):
    assert _create(client, auth).status_code == 201
    _error(_create(client, auth), 409, "round_exists")


def test_create_round_400_for_unreadable_uploads(app, client, auth):
    _error(_create(client, auth, b"%PDF-1.4 not a list"), 400, "wrong_type")
    _error(_create(client, auth, b""), 400, "empty_upload")
    _error(_create(client, auth, b"PK\x03\x04 broken zip"), 400, "bad_upload")
    _error(client.post("/api/rounds", headers=auth, data={"title": "x"}), 400, "no_recipients")
    _error(_create(client, auth, layout="a3-99"), 400, "bad_field")
    # Nothing was kept of the refused rounds: the title is free again.
    assert _create(client, auth).status_code == 201


def test_a_zip_bomb_gets_a_clear_message(client, auth):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("xl/workbook.xml", b"\0" * (50 * 1024 * 1024))
    body = _error(_create(client, auth, buf.getvalue()), 400, "zip_bomb")
    assert "zip bomb" in body["message"]
    assert body["problems"][0]["hint"]


def test_a_password_protected_workbook_gets_a_clear_message(client, auth):
    ole = (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 500
           + "EncryptionInfo".encode("utf-16-le") + b"\0" * 500)
    body = _error(_create(client, auth, ole), 400, "password_protected")
    assert "password" in body["message"]


def test_create_round_413_when_too_large(client, auth):
    big = b"a,b\n" * (700 * 1024)        # 2.8 MB > the 2 MB cap of this app
    r = _create(client, auth, big, name="big.csv")
    assert r.status_code == 413
    assert r.get_json()["error"] == "too_large"


def test_uploads_stay_in_the_rounds_folder_under_generated_names(app, client, auth, tmp_path):
    body = _create(client, auth, name="../../../evil.xlsx").get_json()
    uploads = list((tmp_path / "rounds" / str(body["id"]) / "uploads").iterdir())
    assert len(uploads) == 1 and uploads[0].name.startswith("recipients-")
    assert uploads[0].suffix == ".xlsx" and "evil" not in uploads[0].name
    assert not (tmp_path / "evil.xlsx").exists()
    assert uploads[0].stat().st_mode & 0o077 == 0
    assert uploads[0].parent.stat().st_mode & 0o077 == 0
    # An upload is never served back by name.
    assert client.get(f"/api/rounds/{body['id']}/files/uploads/{uploads[0].name}",
                      headers=auth).status_code == 404


# --- PUT /api/rounds/<id>/recipients -----------------------------------------------------------

def test_put_recipients_rechecks_the_corrected_list(client, auth):
    rid = _create(client, auth, demo_bytes(bad=True)).get_json()["id"]
    r = client.put(f"/api/rounds/{rid}/recipients", headers=auth,
                   data={"recipients": (io.BytesIO(demo_bytes()), "fixed.xlsx")})
    assert r.status_code == 200
    assert r.get_json()["can_build"] is True and r.get_json()["id"] == rid
    _error(client.put(f"/api/rounds/{rid}/recipients", headers=auth,
                      data={"recipients": (io.BytesIO(b"\x7fELF"), "x.csv")}), 400, "wrong_type")
    _error(client.put("/api/rounds/99/recipients", headers=auth,
                      data={"recipients": (io.BytesIO(demo_bytes()), "x.xlsx")}), 404,
           "unknown_round")


# --- build and jobs ----------------------------------------------------------------------------

def test_build_202_then_job_done_and_round_files(app, client, auth):
    rid = _create(client, auth).get_json()["id"]
    r = client.post(f"/api/rounds/{rid}/build", headers=auth, json={"pdf": False})
    assert r.status_code == 202
    job_id = r.get_json()["job"]
    _wait(app, job_id)
    body = client.get(f"/api/jobs/{job_id}", headers=auth).get_json()
    assert body["state"] == "done" and body["error"] is None
    assert {"state", "stage", "done", "total", "error"} <= set(body)
    info = client.get(f"/api/rounds/{rid}", headers=auth).get_json()
    assert info["households"] == 40 and info["purged"] is False
    assert info["counts"] == {"delivered": 0, "failed": 0, "outstanding": 40, "withdrawn": 0}
    names = {f["name"] for f in info["files"]}
    assert {"letters.docx", "slips.pdf", "runsheets.zip", "manifest.csv", "report.xlsx"} <= names
    assert len(info["volunteers"]) == 8 and info["volunteers"][0]["badge_url"].startswith(
        "http://192.0.2.10:8470/V/")
    assert accounts.actions(app.extensions["letterpress"].ledger, 1)[0]["action"] == "build"


def test_build_409_while_queued_and_422_with_errors(app, client, auth):
    rid = _create(client, auth).get_json()["id"]
    gate = threading.Event()
    blocker = app.extensions["letterpress_jobs"].submit(999, "build", lambda p: gate.wait(60))
    try:
        first = client.post(f"/api/rounds/{rid}/build", headers=auth, json={"pdf": False})
        assert first.status_code == 202
        _error(client.post(f"/api/rounds/{rid}/build", headers=auth, json={}), 409,
               "build_running")
        assert client.get(f"/api/jobs/{first.get_json()['job']}", headers=auth) \
            .get_json()["state"] == "queued"
    finally:
        gate.set()
    _wait(app, blocker.id)
    _wait(app, first.get_json()["job"])
    bad = _create(client, auth, demo_bytes(bad=True), title="another").get_json()["id"]
    body = _error(client.post(f"/api/rounds/{bad}/build", headers=auth, json={}), 422,
                  "check_failed")
    assert body["problems"][0]["row"] == BAD_ROW
    _error(client.post("/api/rounds/77/build", headers=auth, json={}), 404, "unknown_round")
    _error(client.get("/api/jobs/nope", headers=auth), 404, "unknown_job")


def test_a_failed_build_says_why(app, client, auth, monkeypatch):
    from letterpress.errors import InputError
    from letterpress.pipeline import build

    def broken(settings, progress=None):
        raise InputError("the template cannot be read", code="bad_template")

    monkeypatch.setattr(build, "build", broken)
    rid = _create(client, auth).get_json()["id"]
    job_id = client.post(f"/api/rounds/{rid}/build", headers=auth, json={}).get_json()["job"]
    _wait(app, job_id)
    body = client.get(f"/api/jobs/{job_id}", headers=auth).get_json()
    assert body["state"] == "failed" and "template cannot be read" in body["error"]


# --- files -------------------------------------------------------------------------------------

def test_files_are_served_with_content_types_and_rfc6266_names(app, client, auth):
    rid = _built(app, client, auth)
    info = client.get(f"/api/rounds/{rid}", headers=auth).get_json()
    types = {"slips.pdf": "application/pdf", "runsheets.zip": "application/zip",
             "manifest.csv": "text/csv; charset=utf-8",
             "letters.docx": "application/vnd.openxmlformats-officedocument."
                             "wordprocessingml.document",
             "report.xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
    for f in info["files"]:
        if f["name"] not in types:
            continue
        r = client.get(f["url"], headers=auth)
        assert r.status_code == 200 and r.headers["Content-Type"] == types[f["name"]]
        cd = r.headers["Content-Disposition"]
        assert cd.startswith('attachment; filename="') and "filename*=UTF-8''" in cd
        assert "%E9%9D%92%E9%B1%BC%E5%98%B4" in cd          # 青鱼嘴, percent-encoded UTF-8
    assert client.get(info["files"][0]["url"]).status_code == 401
    _error(client.get(f"/api/rounds/{rid}/files/../ledger.db", headers=auth), 404,
           "unknown_file")
    _error(client.get(f"/api/rounds/{rid}/files/letters/x.docx", headers=auth), 404,
           "unknown_file")


# --- reprint and purge -------------------------------------------------------------------------

def test_reprint_gives_new_codes_to_what_is_not_delivered(app, client, auth, tmp_path):
    rid = _built(app, client, auth)
    manifest = (tmp_path / "rounds" / str(rid) / "out" / "manifest.csv").read_text("utf-8-sig")
    _error(client.post(f"/api/rounds/{rid}/reprint", headers=auth, json={}), 400, "bad_request")
    r = client.post(f"/api/rounds/{rid}/reprint", headers=auth, json={"outstanding": True})
    assert r.status_code == 200
    body = r.get_json()
    assert body["reprinted"] == 40 and body["counts"]["outstanding"] == 40
    again = (tmp_path / "rounds" / str(rid) / "out" / "manifest.csv").read_text("utf-8-sig")
    assert again != manifest
    other = _create(client, auth, title="not built").get_json()["id"]
    _error(client.post(f"/api/rounds/{other}/reprint", headers=auth, json={"outstanding": True}),
           409, "not_built")
    done = [(a["who"], a["action"]) for a in accounts.actions(app.extensions["letterpress"].ledger)]
    assert ("张敏", "reprint") in done


def test_purge_needs_the_exact_title_then_keeps_counts_only(app, client, auth, tmp_path):
    rid = _built(app, client, auth)
    killed = tmp_path / "rounds" / str(rid) / ".preview-0a1b.part"   # a check killed half-way
    killed.mkdir()
    (killed / "letter.txt").write_text("尊敬的 ……", encoding="utf-8")
    _error(client.delete(f"/api/rounds/{rid}", headers=auth, json={}), 400, "confirm_mismatch")
    _error(client.delete(f"/api/rounds/{rid}", headers=auth, json={"confirm": "wrong"}), 400,
           "confirm_mismatch")
    r = client.delete(f"/api/rounds/{rid}", headers=auth, json={"confirm": TITLE})
    assert r.status_code == 200
    info = client.get(f"/api/rounds/{rid}", headers=auth).get_json()
    assert info["purged"] is True and info["files"] == [] and info["households"] == 40
    folder = tmp_path / "rounds" / str(rid)
    assert not any(p.is_file() for p in folder.rglob("*"))
    _error(client.delete("/api/rounds/55", headers=auth, json={"confirm": TITLE}), 404,
           "unknown_round")


# --- serve starts from nothing -----------------------------------------------------------------

def test_the_app_creates_a_missing_ledger_and_offers_a_setup_link(tmp_path):
    app = create_app(f"sqlite:///{tmp_path}/new/ledger.db", create=True)
    try:
        assert Path(tmp_path / "new" / "ledger.db").is_file()
        link = setup_link(app, "http://192.0.2.10:8470")
        assert link.startswith("http://192.0.2.10:8470/staff/join/")
        accounts.add_staff(app.extensions["letterpress"].ledger, "王芳", "long-enough-1")
        assert setup_link(app, "http://192.0.2.10:8470") is None
    finally:
        close_app(app)
