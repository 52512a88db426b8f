"""Personal data stays owner-only, and bad input to the CLI gets a message, never a bug report.

Modes are checked with a permissive umask (022) in force, as on a shared office computer:
what letterpress writes must be owner-only whatever the umask.
"""
from __future__ import annotations

import contextlib
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


# --- bad input gets a message, never "Internal error" ------------------------------------------

def no_bug(result) -> str:
    said = result.output + result.stderr
    assert "Internal error" not in said and "Traceback" not in said, said
    return said


@pytest.fixture
def built(tmp_path, monkeypatch):
    """A small batch in a ledger: (db option, [printed codes])."""
    import csv

    monkeypatch.chdir(tmp_path)
    db = f"sqlite:///{tmp_path / 'l.db'}"
    run("build", "-r", recipients(tmp_path), "-t", "zh", "--batch", "t", "--db", db,
        "-o", tmp_path / "out", "--base-url", "http://192.0.2.7:8470", "-q")
    with open(tmp_path / "out" / "manifest.csv", encoding="utf-8-sig") as fh:
        codes = [row["code"] for row in csv.DictReader(fh)]
    return db, codes


def test_confirm_from_a_file_with_cr_only_line_endings(tmp_path, built):
    db, codes = built
    scans = tmp_path / "scans.csv"
    scans.write_bytes(f"code,time\r{codes[0]},2020-02-24 10:00\r{codes[1]},2020-02-24 10:05\r"
                      .encode())
    result = run("confirm", "--db", db, "--from", scans)
    said = no_bug(result)
    assert "2 new" in said and "line 3" in said


def test_confirm_from_a_file_with_a_128_kib_field(tmp_path, built):
    db, codes = built
    scans = tmp_path / "scans.csv"
    scans.write_text(f"code,time\n{codes[0]},2020-02-24 10:00\n{'x' * 131_073},now\n",
                     encoding="utf-8")
    result = run("confirm", "--db", db, "--from", scans, ok=False)
    said = no_bug(result)
    assert result.exit_code == 1
    assert "1 new" in said and "line 3" in said and "131,073 characters" in said
    assert len(said) < 2000          # the field is not echoed back


def test_confirm_from_a_file_with_a_year_1_time(tmp_path, built):
    db, codes = built
    scans = tmp_path / "scans.csv"
    scans.write_text(f"code,time\n{codes[0]},0001-01-01 00:00\n", encoding="utf-8")
    result = run("confirm", "--db", db, "--from", scans, ok=False)
    said = no_bug(result)
    assert result.exit_code == 1 and "line 2" in said and "not a plausible delivery time" in said
    assert "0 new" in said


def test_confirm_at_year_1(tmp_path, built):
    db, codes = built
    result = run("confirm", "--db", db, "--at", "0001-01-01", "--by", "李明", codes[0], ok=False)
    said = no_bug(result)
    assert result.exit_code == 1 and "0001-01-01" in said and "1970 to 2200" in said


LONG = "𠀀" * 100    # 400 bytes of UTF-8: far past the 255 a file name may have


def test_long_names_are_shortened_by_bytes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rows = [[1, LONG, "奶奶", "沙湖小区", "1栋", "1单元", "101", "13800000001", "李" * 90],
            [2, "张桂兰", "奶奶", "沙湖小区", "2栋", "1单元", "102", "13800000002", LONG]]
    out = tmp_path / "out"
    no_bug(run("build", "-r", recipients(tmp_path, rows), "-t", "zh", "--batch", "t",
               "--db", f"sqlite:///{tmp_path / 'l.db'}", "-o", out,
               "--base-url", "http://192.0.2.7:8470", "-q"))
    names = [p.name for p in out.rglob("*")]
    assert all(len(n.encode()) <= 160 for n in names), max(names, key=len)
    letter = next(n for n in names if n.startswith("0001-"))
    assert letter.startswith("0001-𠀀𠀀") and letter.endswith(".docx")
    assert len([n for n in names if n.endswith(".pdf") and n[:2].isdigit()]) == 2


def test_a_file_name_the_disk_cannot_hold_is_found_before_anything_is_written(tmp_path,
                                                                            monkeypatch):
    from letterpress import files

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(files, "name_max", lambda folder: 143)   # eCryptfs-like home folders
    rows = [[1, "王秀英", "奶奶", "沙湖小区", "1栋", "1单元", "101", "13800000001", "李明"],
            [2, LONG, "奶奶", "沙湖小区", "2栋", "1单元", "102", "13800000002", "李明"]]
    out = tmp_path / "out"
    db = tmp_path / "l.db"
    result = run("build", "-r", recipients(tmp_path, rows), "-t", "zh", "--batch", "t",
                 "--db", f"sqlite:///{db}", "-o", out, ok=False)
    said = no_bug(result)
    assert result.exit_code == 1 and "row 3" in said and "allows 143" in said
    assert not out.exists() and not db.exists()


def test_bidi_controls_are_stripped_from_file_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rows = [[1, "王\u202e秀\u2066英\u200f", "奶奶", "沙湖小区", "1栋", "1单元", "101",
             "13800000001", "李\u202b明\u202c"]]
    no_bug(run("build", "-r", recipients(tmp_path, rows), "-t", "zh", "--batch", "t\u202eexe.pdf",
               "--db", f"sqlite:///{tmp_path / 'l.db'}",
               "--base-url", "http://192.0.2.7:8470", "-q"))
    names = [p.name for p in (tmp_path / "output").rglob("*")]
    assert "0001-王秀英.docx" in names and "01-李明.pdf" in names
    assert "texe.pdf" in names       # the batch folder, from the title
    assert not any(ch in n for n in names for ch in "\u202e\u2066\u200f\u202b\u202c")


def test_a_password_protected_workbook_says_so(fixtures):
    result = run("check", "-r", fixtures / "password-protected.xlsx", "-t", "zh", ok=False)
    said = no_bug(result)
    assert result.exit_code == 1 and "protected with a password" in said
    assert "old Excel" not in said


def test_a_cell_longer_than_excel_allows(tmp_path):
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(HEADER)
    ws.append([1, "王秀英", "奶奶", "沙湖小区", "1栋", "1单元", "101", "13800000001", "李明"])
    ws.append([2, "张桂兰", "奶奶", "沙湖小区", "2栋", "1单元", "102", "LONG-CELL", "李明"])
    wb.save(tmp_path / "made.xlsx")
    # openpyxl itself cuts cells at Excel's limit: the longer cell is written into the XML
    import zipfile

    with zipfile.ZipFile(tmp_path / "made.xlsx") as src, \
            zipfile.ZipFile(tmp_path / "long.xlsx", "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item)
            dst.writestr(item, data.replace(b"LONG-CELL", "备".encode() * 40_000))
    for path in (tmp_path / "long.xlsx", recipients(tmp_path, [
            [1, "王秀英", "奶奶", "沙湖小区", "1栋", "1单元", "101", "x" * 200_000, "李明"]])):
        result = run("check", "-r", path, "-t", "zh", ok=False)
        said = no_bug(result)
        assert result.exit_code == 1 and "column 'H'" in said and "32,767" in said
        assert ("row 3" if path.suffix == ".xlsx" else "row 2") in said


def test_a_workbook_that_inflates_past_the_cap(tmp_path, monkeypatch):
    import zipfile

    import openpyxl

    from letterpress.recipients import read

    wb = openpyxl.Workbook()
    wb.active.append(HEADER)
    wb.save(tmp_path / "bomb.xlsx")
    with zipfile.ZipFile(tmp_path / "bomb.xlsx", "a", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("xl/media/padding.bin", "w", force_zip64=True) as member:
            for _ in range(48):
                member.write(bytes(1 << 20))           # 48 MB of zeros: about 50 KB packed
    assert (tmp_path / "bomb.xlsx").stat().st_size < 1 << 20
    monkeypatch.setattr(read, "MAX_XLSX_UNPACKED", 32 * 2**20)
    result = run("check", "-r", tmp_path / "bomb.xlsx", "-t", "zh", ok=False)
    said = no_bug(result)
    assert result.exit_code == 1 and "once unpacked" in said and "up to 32 MB" in said


@contextlib.contextmanager
def tmpfs(mount: Path, size: str):
    """A tmpfs of ``size`` mounted at ``mount`` (skipped, or failed under
    LETTERPRESS_REQUIRE_ALL=1, where mounting is not allowed)."""
    import subprocess

    from conftest import require

    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs",
                           str(mount)], capture_output=True, text=True)
    require(done.returncode == 0, f"cannot mount a small tmpfs here ({done.stderr.strip()})")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


@pytest.fixture
def small_disk(tmp_path):
    with tmpfs(tmp_path / "small", "512k") as mount:
        yield mount


def test_a_full_disk_names_the_folder_and_what_was_needed(tmp_path, small_disk, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rows = [[i, f"王{i}英", "奶奶", "沙湖小区", f"{i}栋", "1单元", f"{i}01", f"1380000{i:04d}",
             "李明"] for i in range(1, 41)]
    listed = recipients(tmp_path, rows)
    out = small_disk / "round"
    db = tmp_path / "l.db"
    result = run("build", "-r", listed, "-t", "zh", "--batch", "t", "--db", f"sqlite:///{db}",
                 "-o", out, "--base-url", "http://192.0.2.7:8470", ok=False)
    said = no_bug(result)
    assert result.exit_code == 1 and str(out) in said and "needs about" in said
    assert not db.exists()            # refused before the ledger registered anything
    # The estimate is passed (as if the disk filled up meanwhile): the real ENOSPC is caught.
    from letterpress.pipeline import build

    monkeypatch.setattr(build, "space_needed", lambda *args, **kwargs: 1)
    result = run("letters", "-r", listed, "-t", "zh", "--batch", "t", "-o", out, "-q",
                 ok=False)
    said = no_bug(result)
    assert result.exit_code == 1 and f"the disk holding {out} is full" in said
    assert not (out / "letters").exists() and not (out / "letters.docx").exists()
    assert not [p for p in out.rglob("*") if p.is_file()]     # no half-written leftovers


def test_confirm_with_a_128_kib_note_or_name(tmp_path, built):
    db, codes = built
    for option, words in (("--note", "--note is 131,072 characters"),
                          ("--by", "--by is 131,072 characters")):
        args = ["confirm", "--db", db, "--outcome", "other", codes[0], option, "备" * 131_072]
        if option == "--note":
            args += ["--by", "李明"]
        result = run(*args, ok=False)
        said = no_bug(result)
        assert result.exit_code == 1 and words in said and len(said) < 2000
    run("report", "--db", db, "-o", tmp_path / "report.csv")
    assert "备" * 10 not in (tmp_path / "report.csv").read_text(encoding="utf-8-sig")  # not stored


def test_a_full_disk_under_the_ledger_says_so(tmp_path, built):
    import shutil

    db, codes = built
    with tmpfs(tmp_path / "disk", "4m") as disk:
        ledger = disk / "l.db"
        shutil.copy(tmp_path / "l.db", ledger)
        with open(disk / "filler", "wb", buffering=0) as fh:     # fill the rest of the disk
            with contextlib.suppress(OSError):
                while True:
                    fh.write(bytes(4096))
        result = run("confirm", "--db", f"sqlite:///{ledger}", "--by", "李明", codes[0], ok=False)
        said = no_bug(result)
        assert result.exit_code == 1 and f"the disk holding {disk} is full" in said
