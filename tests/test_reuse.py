"""A batch built again keeps the letters of unchanged households, byte for byte as rendered."""
from __future__ import annotations

import csv
import os

import pytest

from letterpress.cli import settings_from
from letterpress.pipeline import build
from letterpress.pipeline.reuse import INDEX

HEADER = ("序号", "姓名", "称呼", "小区", "楼栋", "单元", "房号", "志愿者", "备注")


def _rows(n: int = 12) -> list:
    return [[str(k), f"示例{k}", "奶奶", "示例小区", f"{k % 3 + 1}栋", "1单元", f"{k}01",
             ("林小舟", "高山青")[k % 2], "上午在家"] for k in range(1, n + 1)]


def _write(path, rows) -> None:
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        w.writerows(rows)


def _build(tmp_path, rows, out, jobs):
    _write(tmp_path / "list.csv", rows)
    settings = settings_from(None, recipients=str(tmp_path / "list.csv"), template="zh",
                             title="2020-02-24 示例", org="示例街道", package="蔬菜",
                             date="2020-02-24", base_url="http://192.168.1.20:8470",
                             db=f"sqlite:///{tmp_path / 'ledger.db'}", out=str(out), jobs=jobs,
                             quiet=True)
    return build.build(settings)


def _letters(out) -> dict:
    folder = out / "letters"
    return {p.name: (p.read_bytes(), os.stat(p).st_ino) for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("jobs", [1, 2])
def test_unchanged_letters_are_kept_and_equal_a_fresh_build(tmp_path, jobs):
    rows = _rows()
    out = tmp_path / "out"
    first = _build(tmp_path, rows, out, jobs)
    before = _letters(out)
    codes = (out / "manifest.csv").read_text("utf-8-sig")
    assert len(before) == 12 and (out / INDEX).is_file()

    _build(tmp_path, rows, out, jobs)                       # nothing changed: all kept
    again = _letters(out)
    assert again == before                                  # same bytes, same files (inodes)

    rows[2][2] = "爷爷"                                      # one household is addressed anew
    second = _build(tmp_path, rows, out, jobs)
    after = _letters(out)
    changed = [name for name in after if after[name][1] != before[name][1]]
    assert len(changed) == 1 and changed[0].endswith("-示例3.docx")
    assert after[changed[0]][0] != before[changed[0]][0]
    assert (out / "manifest.csv").read_text("utf-8-sig") == codes     # codes kept
    assert (second.new, second.kept) == (0, 12) and first.new == 12

    fresh = tmp_path / "fresh"                              # the same batch from scratch
    _build(tmp_path, rows, fresh, jobs)
    assert {n: b for n, (b, _) in _letters(fresh).items()} == \
        {n: b for n, (b, _) in after.items()}
    assert (fresh / "letters.docx").read_bytes() == (out / "letters.docx").read_bytes()


def test_a_letter_edited_by_hand_is_written_again(tmp_path):
    rows = _rows(5)
    out = tmp_path / "out"
    _build(tmp_path, rows, out, 1)
    target = sorted((out / "letters").iterdir())[1]
    rendered = target.read_bytes()
    target.write_bytes(rendered + b"edited")
    _build(tmp_path, rows, out, 1)
    assert target.read_bytes() == rendered
    (out / INDEX).write_text("garbage", "utf-8")            # an unreadable index: all written
    _build(tmp_path, rows, out, 1)
    assert target.read_bytes() == rendered


def _sheets(out) -> dict:
    return {p.name: os.stat(p).st_ino for p in sorted((out / "runsheets").iterdir())}


def test_unchanged_run_sheets_are_kept_and_a_changed_one_is_written(tmp_path):
    from letterpress.pipeline.reuse import RUNSHEETS

    rows = _rows()
    out = tmp_path / "out"
    _build(tmp_path, rows, out, 1)
    before = _sheets(out)
    assert len(before) == 2 and (out / RUNSHEETS).is_file()
    _build(tmp_path, rows, out, 1)
    assert _sheets(out) == before                           # the same files
    rows[3][8] = "下午在家"                                  # a household of 林小舟
    _build(tmp_path, rows, out, 1)
    after = _sheets(out)
    assert [n for n in after if after[n] != before[n]] == ["02-林小舟.pdf"]
    from pypdf import PdfReader

    assert "下午在家" in PdfReader(out / "runsheets" / "02-林小舟.pdf").pages[0].extract_text()
    target = out / "runsheets" / "01-高山青.pdf"              # edited by hand: written again
    target.write_bytes(target.read_bytes() + b"%edited")
    _build(tmp_path, rows, out, 1)
    assert not target.read_bytes().endswith(b"%edited")


def test_workers_started_fresh_make_the_same_batch(tmp_path, monkeypatch):
    """At district size worker processes start fresh and are sent their households only
    (processes.FRESH_FROM); the batch is the same as with forked workers."""
    from pypdf import PdfReader

    from letterpress.pipeline import processes

    rows = _rows(220)
    monkeypatch.setattr(processes, "FRESH_FROM", 10**9)
    _build(tmp_path, rows, tmp_path / "forked", 2)
    monkeypatch.setattr(processes, "FRESH_FROM", 0)
    _build(tmp_path, rows, tmp_path / "fresh", 2)
    assert {n: b for n, (b, _) in _letters(tmp_path / "fresh").items()} == \
        {n: b for n, (b, _) in _letters(tmp_path / "forked").items()}

    def text(folder):
        return {p.name: "".join(page.extract_text() for page in PdfReader(p).pages)
                for p in sorted((folder / "runsheets").iterdir())}

    assert text(tmp_path / "fresh") == text(tmp_path / "forked") and len(text(tmp_path / "fresh")) == 2
    rows[5][8] = "下午在家"                                   # again, with the previous letters
    _build(tmp_path, rows, tmp_path / "fresh", 2)
    _build(tmp_path, rows, tmp_path / "fresh2", 2)
    assert {n: b for n, (b, _) in _letters(tmp_path / "fresh").items()} == \
        {n: b for n, (b, _) in _letters(tmp_path / "fresh2").items()}


def test_a_worker_ends_when_the_build_that_started_it_is_killed(tmp_path):
    """kill -9 of a build leaves no worker waiting for ever (processes.watch)."""
    import signal
    import subprocess
    import sys
    import time

    build = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    worker = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from letterpress.pipeline import processes; "
        "processes.WATCH_EVERY = 0.1; processes.watch(int(sys.argv[1])); time.sleep(60)"),
        str(build.pid)])
    try:
        time.sleep(1.0)
        assert worker.poll() is None                 # the build is there: the worker waits
        build.send_signal(signal.SIGKILL)
        build.wait(10)
        assert worker.wait(10) == 1                  # and ends soon after the build
    finally:
        for p in (build, worker):
            if p.poll() is None:
                p.kill()


def test_a_worker_started_fresh_speaks_the_language_of_whoever_asked(monkeypatch):
    """A fresh worker does not inherit the console user's language: it is given it."""
    from letterpress import i18n
    from letterpress.pipeline import processes

    monkeypatch.setattr(processes, "FRESH_FROM", 0)
    ctx = processes.context(1)
    assert ctx.get_start_method() in ("forkserver", "spawn")
    for lang in ("zh", "en"):
        with i18n.using(lang):
            with ctx.Pool(1, processes.worker_setup, processes.setup_args()) as pool:
                assert pool.apply(i18n.current_lang) == lang


def test_the_index_is_written_as_letters_come_and_replaced_only_when_all_are(tmp_path):
    """A build writes its letters' index entry by entry (a district's are not held in
    memory); a build that fails half-way leaves the previous index as it was, and no
    half-written copy beside it."""
    from letterpress.pipeline import reuse

    reuse.write_index(tmp_path, {"00001-a.docx": ("f" * 40, 10, 20)})
    before = (tmp_path / INDEX).read_bytes()
    assert reuse.read_index(tmp_path) == {"00001-a.docx": ("f" * 40, 10, 20)}
    with pytest.raises(RuntimeError):
        with reuse.IndexWriter(tmp_path) as index:
            index.add("00001-b.docx", ("e" * 40, 11, 21))
            raise RuntimeError("killed half-way")
    assert (tmp_path / INDEX).read_bytes() == before
    assert sorted(p.name for p in (tmp_path / INDEX).parent.iterdir()) == [INDEX.name]
    with reuse.IndexWriter(tmp_path) as index:
        for i in range(3):
            index.add(f"{i:05d}-c.docx", ("d" * 40, i, i + 1))
    assert reuse.read_index(tmp_path) == {f"{i:05d}-c.docx": ("d" * 40, i, i + 1)
                                          for i in range(3)}
    assert oct((tmp_path / INDEX).stat().st_mode & 0o777) == "0o600"
