"""Hardening of what letterpress writes: never deleting or mixing up what is not ours.

One test per promise of the README's "Security and privacy" section (files, crashes,
two builds at once, reprints, ...). Crashes are real: ``letterpress`` runs as a
subprocess and is killed with SIGKILL at several points, then run again.
"""
from __future__ import annotations

import csv
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import require_program
from ledger_fixtures import db_url  # noqa: F401  (fixture)
from pypdf import PdfReader
from sqlalchemy import create_engine, select

from letterpress.cli import main
from letterpress.ledger import Ledger
from letterpress.ledger import schema as S

LETTERPRESS = str(Path(sys.executable).with_name("letterpress"))
DEMO_TITLE = "2020-02-24 青鱼嘴社区 爱心慰问"
#: Hidden copies a killed command may leave (they can hold names and phones).
LEFTOVER = re.compile(r"^\..+\.([a-z0-9_]{8}\.(part|partial)|old-\d+)$|^\.pdf-work\.")
HEADER = ["序号", "姓名", "称呼", "小区", "楼栋", "房号", "联系电话", "志愿者"]


def run(*args, ok=True, env=None):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False, env=env)
    if ok:
        assert result.exit_code == 0, result.output + result.stderr
    assert "Traceback" not in result.output + result.stderr
    return result


def recipients(path: Path, names, volunteer_of=lambda i: ("林小舟", "高山青")[i % 2]) -> Path:
    """A CSV of fictional households, one per name."""
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        for i, name in enumerate(names, start=1):
            w.writerow([i, name, "奶奶", "示例小区", f"{i}栋", f"{i}01", f"1380000{i:04d}",
                        volunteer_of(i)])
    return path


def manifest(out: Path):
    with open(out / "manifest.csv", encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def leftovers(folder: Path):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if LEFTOVER.match(p.name))


def demo(out: Path, db: str, *extra):
    return run("demo", "--out", out, "--db", db, "--base-url", "http://192.0.2.10:8470", "-q",
               *extra)


def pdf_text(path: Path) -> str:
    return "".join(page.extract_text() or "" for page in PdfReader(str(path)).pages)


# --- never replace or delete what is not ours ---------------------------------------------------

def test_build_never_replaces_files_it_did_not_write_nor_mixes_two_batches(tmp_path):
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    folder = tmp_path / "round"
    folder.mkdir()
    (folder / "reprint-budget.xlsx").write_bytes(b"a user's spreadsheet")
    (folder / "letters.docx").write_bytes(b"a user's own letter")
    r = run("demo", "--out", folder, "--db", db, "-q", ok=False)
    assert r.exit_code == 1
    assert "letterpress did not write" in r.stderr and "letters.docx" in r.stderr
    assert "How to fix" in r.stderr
    assert (folder / "letters.docx").read_bytes() == b"a user's own letter"
    assert not (folder / "slips.pdf").exists()                 # refused before writing
    # Files beside ours with names of their own are left alone.
    (folder / "letters.docx").unlink()
    (folder / "letters").mkdir()
    (folder / "letters" / "notes.txt").write_text("ring twice at 3栋", encoding="utf-8")
    demo(folder, db)
    demo(folder, db)                                           # again: the files are ours
    assert (folder / "reprint-budget.xlsx").read_bytes() == b"a user's spreadsheet"
    assert (folder / "letters" / "notes.txt").read_text(encoding="utf-8") == "ring twice at 3栋"
    assert len(list((folder / "letters").glob("*.docx"))) == 40
    # Another batch into the same folder would mix two lists: refused.
    other = recipients(tmp_path / "other.csv", ["示例甲", "示例乙"])
    r = run("build", "-r", other, "--batch", "另一轮", "--out", folder, "--db", db,
            "--base-url", "http://192.0.2.10:8470", ok=False)
    assert r.exit_code == 1 and "another batch" in r.stderr
    assert len(manifest(folder)) == 40


def test_purge_deletes_only_the_files_letterpress_wrote(tmp_path):
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    out = tmp_path / "out"
    demo(out, db)
    theirs = {out / "reprint-budget.xlsx": b"budget", out / "print" / "notes.txt": b"notes",
              out / "runsheets" / "route-notes.txt": b"route",
              out / "letters" / "0001-mine.txt": b"mine"}
    for path, data in theirs.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    run("slips", "--db", db)                   # replaces runsheets/: theirs is carried over
    run("reprint", "--db", db, "--household", manifest(out)[0]["id"])
    r = run("purge", "--db", db, "--yes")
    assert "Purged" in r.output
    left = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert left == sorted(str(p.relative_to(out)) for p in theirs), left
    for path, data in theirs.items():
        assert path.read_bytes() == data


# --- crashes --------------------------------------------------------------------------------------

def _kill_when(cmd, env, condition, timeout=120.0):
    """Run ``cmd``; SIGKILL it as soon as ``condition()`` holds. Its process id if it was
    killed, else 0."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if condition():
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
                return proc.pid
            time.sleep(0.002)
        return 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def _any(folder: Path, pattern: str):
    return lambda: any(folder.glob(pattern))


def _complete(out: Path, households: int = 40, volunteers: int = 8) -> None:
    rows = manifest(out)
    assert len(rows) == households
    assert sorted(p.name for p in (out / "letters").glob("*.docx")) == \
        sorted(Path(r["letter"]).name for r in rows)
    assert len(list((out / "runsheets").glob("*.pdf"))) == volunteers
    text = pdf_text(out / "slips.pdf")
    assert all(r["code"] in text for r in rows)
    assert leftovers(out) == [], leftovers(out)


def test_build_killed_at_any_point_then_run_again_leaves_a_complete_batch(tmp_path):
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    out = tmp_path / "out"
    cmd = [LETTERPRESS, "demo", "--out", str(out), "--db", db, "--base-url",
           "http://192.0.2.10:8470", "-q"]
    env = dict(os.environ)
    points = [_any(out, ".letters.*.partial/0002-*"), _any(out, ".letters.docx.*.part"),
              _any(out, ".runsheets.*.partial/*.pdf"), _any(out, ".slips.pdf.*.part"),
              lambda: (out / "manifest.csv").exists() and not leftovers(out)]
    left_behind = []
    for when in points:
        if out.exists():
            for path in list(out.iterdir()):           # each kill starts from a fresh folder
                subprocess.run(["rm", "-rf", str(path)], check=True)
        killed = _kill_when(cmd, env, when)
        left_behind.append(killed and bool(leftovers(out)))
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        _complete(out)
    assert any(left_behind), "no kill landed while a hidden copy existed"
    # purge removes such leftovers too
    _kill_when(cmd, env, _any(out, ".letters.*.partial/0002-*"))
    assert leftovers(out)
    run("purge", "--db", db, "--yes")
    assert leftovers(out) == [] and not (out / "letters").exists()


def _codes(db: str):
    engine = create_engine(db)
    with engine.connect() as conn:
        rows = conn.execute(select(S.codes.c.code, S.codes.c.revoked_at)).all()
        plan = conn.execute(select(S.meta.c.value).where(S.meta.c.key.like("%:reprint"))).all()
    engine.dispose()
    return {r.code for r in rows if r.revoked_at is None}, plan


def test_reprint_killed_midway_keeps_old_codes_valid_then_finishes(tmp_path):
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    out = tmp_path / "out"
    demo(out, db)
    before, _ = _codes(db)
    first = manifest(out)[:3]
    cmd = [LETTERPRESS, "reprint", "--db", db, "-q"]
    for row in first:
        cmd += ["--household", row["id"]]
    env = dict(os.environ)
    killed = _kill_when(cmd, env, lambda: bool(_codes(db)[1]))     # the plan is made
    assert killed
    valid, plan = _codes(db)
    assert valid == before and plan                  # old codes still work, new ones not yet
    with Ledger.open(db) as led:
        for row in first:
            assert led.household_by_code(row["code"]).key == row["id"]
    killed = _kill_when(cmd, env, _any(out, ".slips.pdf.*.part"))
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    valid, plan = _codes(db)
    assert not plan
    rows = manifest(out)
    assert {r["code"].replace("-", "") for r in rows} == valid
    assert all(r["code"] != f["code"] for r, f in zip(rows, first))
    (folder,) = out.glob("reprint-*")
    text = pdf_text(folder / "slips.pdf")
    assert all(r["code"] in text for r in rows[:3])
    _complete(out)


def test_pdf_killed_at_any_point_then_run_again_leaves_complete_print_packs(tmp_path):
    require_program("soffice", "libreoffice-writer-nogui")
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    out = tmp_path / "out"
    demo(out, db)
    cmd = [LETTERPRESS, "pdf", "--db", db, "-q"]
    env = dict(os.environ)
    seen = []
    for when in (_any(out, ".pdf-work.*/letters/*.pdf"), _any(out, ".print.*.partial/*.pdf")):
        killed = _kill_when(cmd, env, when, timeout=300)
        seen.append(killed and bool(leftovers(out)))
        subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=600)
        assert len(list((out / "print").glob("*.pdf"))) == 8
        assert len(PdfReader(str(out / "letters.pdf")).outline) == 40
        assert leftovers(out) == []
        # nor LibreOffice's folders of the killed run in the temporary folder
        assert not list(Path(tempfile.gettempdir()).glob(f"letterpress-soffice*-p{killed}-*"))
    assert any(seen)


# --- two builds at once ---------------------------------------------------------------------------

def test_two_builds_of_one_batch_at_once_never_mix_two_lists(tmp_path, db_url):  # noqa: F811
    one = recipients(tmp_path / "one.csv", [f"示例一{i}" for i in range(1, 61)])
    two = recipients(tmp_path / "two.csv", [f"示例二{i}" for i in range(1, 4)])
    out = tmp_path / "out"
    args = ["--batch", "同一轮", "--out", str(out), "--db", db_url, "--base-url",
            "http://192.0.2.10:8470", "-q"]
    first = subprocess.Popen([LETTERPRESS, "build", "-r", str(one), *args],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    engine = create_engine(db_url)
    try:
        deadline = time.monotonic() + 60
        locked = False
        while time.monotonic() < deadline and first.poll() is None and not locked:
            try:
                with engine.connect() as conn:
                    locked = bool(conn.execute(select(S.meta.c.key).where(
                        S.meta.c.key.like("lock:%"))).all())
            except Exception:
                pass        # the ledger is being created
            time.sleep(0.005)
        assert locked, "the first build never held the lock"
        r = run("build", "-r", two, *args, ok=False)
        assert r.exit_code == 1
        assert "being written right now" in r.stderr and "How to fix" in r.stderr
        assert first.wait(120) == 0, first.stderr.read().decode()
    finally:
        engine.dispose()
        if first.poll() is None:
            first.kill()
    assert sorted(r["name"] for r in manifest(out)) == sorted(f"示例一{i}" for i in range(1, 61))
    assert len(list((out / "letters").glob("*.docx"))) == 60
    run("build", "-r", two, *args)                    # once the first is done, the second runs
    assert sorted(r["name"] for r in manifest(out)) == [f"示例二{i}" for i in range(1, 4)]
    assert sorted(p.name.split("-", 1)[1] for p in (out / "letters").glob("*.docx")) == \
        ["示例二1.docx", "示例二2.docx", "示例二3.docx"]


# --- reprints update every file that shows a code -------------------------------------------------

def test_reprint_remakes_print_packs_or_names_them_stale(tmp_path):
    require_program("soffice", "libreoffice-writer-nogui")
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    out = tmp_path / "out"
    demo(out, db, "--pdf")
    row = manifest(out)[0]
    pack = out / "print" / "01-陈思远.pdf"
    assert row["volunteer"] == "陈思远" and row["code"] in pdf_text(pack)
    r = run("reprint", "--db", db, "--household", row["id"])
    new = manifest(out)[0]["code"]
    assert new != row["code"]
    text = pdf_text(pack)
    assert new in text and row["code"] not in text
    if "slips and letters" in r.output:               # a template that shows the code
        assert new in pdf_text(out / "letters.pdf")
    assert "up to date" in r.output
    # Without LibreOffice the print files cannot be made again: they are named, never
    # called up to date.
    r = run("reprint", "--db", db, "--household", row["id"],
            env={"LETTERPRESS_SOFFICE": str(tmp_path / "no-such-soffice")})
    newer = manifest(out)[0]["code"]
    assert newer in pdf_text(out / "slips.pdf") and newer not in pdf_text(pack)
    assert "print/01-陈思远.pdf" in r.stderr and "still show the revoked codes" in r.stderr
    assert f"{out} is up to date" not in r.output
    assert "stale" in r.output


def test_lock_of_a_killed_program_is_taken_over_and_a_live_one_refuses(tmp_path, db_url):  # noqa: F811
    from letterpress.errors import LedgerError
    from letterpress.ledger import locks

    with Ledger.open(db_url, create=True) as led:
        held = led.lock("第一轮", ["out:/tmp/x"], "build")
        with pytest.raises(LedgerError) as exc:
            led.lock("第一轮", [], "pdf")
        assert exc.value.code == "batch_busy" and "build" in exc.value.message
        with pytest.raises(LedgerError):
            led.lock("另一轮", ["out:/tmp/x"], "build")    # same folder
        held.release()
        led.lock("第一轮", [], "pdf").release()
        # A lock left by a process that died is taken over at once.
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        value = json.dumps({"what": "build", "batch": "第一轮", "host": socket.gethostname(),
                            "pid": dead.pid, "since": time.time(), "beat": time.time()})
        with led.transaction(write=True) as conn:
            conn.execute(S.meta.insert().values(key=locks.lock_key("batch:第一轮"), value=value))
        led.lock("第一轮", [], "build").release()
