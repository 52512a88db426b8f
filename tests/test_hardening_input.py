"""Personal data stays owner-only, and bad input to the CLI gets a message, never a bug report.

Modes are checked with a permissive umask (022) in force, as on a shared office computer:
what letterpress writes must be owner-only whatever the umask.
"""
from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest
from clitools import run

from letterpress.errors import mask_secrets

HEADER = ["序号", "姓名", "称呼", "小区", "楼栋", "单元", "房号", "联系电话", "志愿者"]


def recipients(tmp_path: Path, rows=None, name="list.csv") -> Path:
    rows = rows or [[i, f"王{i}英", "奶奶", "沙湖小区", f"{i}栋", "1单元", f"{i}01",
                     f"1380000{i:04d}", "李明" if i % 2 else "陈晓"] for i in range(1, 5)]
    path = tmp_path / name
    text = "\n".join(",".join(map(str, r)) for r in [HEADER] + rows) + "\n"
    path.write_text(text, encoding="utf-8-sig")
    return path


@pytest.fixture
def open_umask():
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def assert_owner_only(root: Path) -> list:
    seen = [root]
    assert mode(root) == 0o700, root
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            seen.append(Path(dirpath, d))
            assert mode(Path(dirpath, d)) == 0o700, Path(dirpath, d)
        for f in filenames:
            seen.append(Path(dirpath, f))
            assert mode(Path(dirpath, f)) == 0o600, (Path(dirpath, f), oct(mode(Path(dirpath, f))))
    return seen


# --- personal data is owner-only ---------------------------------------------------------------

def test_build_report_and_ledger_are_owner_only_whatever_the_umask(tmp_path, open_umask,
                                                                  monkeypatch):
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "ledger" / "letterpress.db"
    out = tmp_path / "out" / "round"
    run("build", "-r", recipients(tmp_path), "-t", "zh", "--batch", "2020-02-24 测试",
        "--db", f"sqlite:///{db}", "-o", out, "--base-url", "http://192.0.2.7:8470", "-q")
    files = assert_owner_only(out)
    assert {"letters.docx", "slips.pdf", "manifest.csv"} <= {p.name for p in files}
    assert any(p.suffix == ".docx" and p.parent.name == "letters" for p in files)
    assert mode(tmp_path / "out") == 0o700 and mode(db.parent) == 0o700
    assert mode(db) == 0o600          # the ledger holds the signing secret and every name
    for kind in ("csv", "xlsx"):
        report = tmp_path / "exports" / f"report.{kind}"
        run("report", "--db", f"sqlite:///{db}", "-o", report)
        assert mode(report) == 0o600 and mode(report.parent) == 0o700


def test_the_ledger_and_its_wal_and_shm_are_owner_only(tmp_path, open_umask):
    from letterpress.ledger import Ledger

    db = tmp_path / "l.db"
    db.touch(mode=0o644)              # made by someone else's tool, readable by all
    os.chmod(db, 0o644)
    ledger = Ledger.open(f"sqlite:///{db}", create=True)
    try:
        ledger.secret()
        probe = sqlite3.connect(db)   # a second connection keeps -wal and -shm in place
        probe.execute("select count(*) from meta").fetchall()
        for name in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
            assert name.exists() and mode(name) == 0o600, name
        probe.close()
    finally:
        ledger.close()


def test_letters_made_by_the_library_are_owner_only(tmp_path, open_umask):
    """Without the command line (the web console calls the library): modes set explicitly."""
    from letterpress import config
    from letterpress.pipeline import build

    out = tmp_path / "made" / "here"
    settings = config.load(None, recipients=str(recipients(tmp_path)), template="zh", out=str(out),
                           title="2020-02-24 测试")
    build.letters(settings)
    assert_owner_only(out)
    assert mode(tmp_path / "made") == 0o700


def test_the_error_log_is_owner_only_and_never_holds_a_password(tmp_path, open_umask,
                                                                monkeypatch):
    from letterpress.pipeline import build

    def broken(*args, **kwargs):
        raise RuntimeError("could not reach postgresql+psycopg://ann:hunter2@db.example/lp")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(build, "check", broken)
    result = run("build", "-r", recipients(tmp_path), "-t", "zh",
                 "--db", "postgresql://ann:hunter2@db.example/lp", ok=False)
    said = result.output + result.stderr
    assert "Internal error" in said and "hunter2" not in said and "ann:***@" in said
    log = tmp_path / "output" / "letterpress-error.log"
    assert mode(log) == 0o600 and mode(log.parent) == 0o700
    assert "hunter2" not in log.read_text(encoding="utf-8")
    assert "ann:***@db.example" in log.read_text(encoding="utf-8")


@pytest.mark.parametrize("args", [
    ["status", "--db", "postgresql://ann:hunter2@/lp?host=/nonexistent"],
    ["status", "--db", "postgresql+psycopg://ann:hunter2@127.0.0.1:1/lp"],
    ["status", "--db", "mysql:/ann:hunter2@@@h"],
    ["serve", "--db", "postgresql://ann:hunter2@127.0.0.1:1/lp", "--port", "1"],
])
def test_database_passwords_are_masked_in_messages(tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    result = run(*args, ok=False)
    said = result.output + result.stderr
    assert result.exit_code != 0 and "hunter2" not in said, said
    log = tmp_path / "output" / "letterpress-error.log"
    assert not log.exists() or "hunter2" not in log.read_text(encoding="utf-8")


def test_mask_secrets():
    assert mask_secrets("postgresql+psycopg://ann:s3cr@t@db:5432/lp") == \
        "postgresql+psycopg://ann:***@db:5432/lp"
    assert mask_secrets("host=db password='a b' user=ann") == "host=db password=*** user=ann"
    assert mask_secrets("sqlite:///output/letterpress.db") == "sqlite:///output/letterpress.db"
