"""A large list is checked in a process of its own and its households kept packed; the
batch it builds is the one an ordinary build makes."""
from __future__ import annotations

import csv
import pickle

import pytest
from pdftools import decoded_pages

from letterpress.cli import settings_from
from letterpress.errors import CheckFailed, InputError
from letterpress.models import Household, Recipient
from letterpress.packed import BLOCK, Coded, Packed
from letterpress.pipeline import build, processes

HEADER = ("序号", "姓名", "称呼", "小区", "楼栋", "单元", "房号", "电话", "志愿者", "备注")
VOLUNTEERS = ("林小舟", "高山青", "叶知秋", "白云飞", "")


def _rows(n: int) -> list:
    return [[str(k), f"示例{k}", "奶奶", "示例小区", f"{k % 7 + 1}栋", "1单元", f"{k}01",
             f"1380000{k:04d}", VOLUNTEERS[(k // 60) % 5], "上午在家"] for k in range(1, n + 1)]


def _settings(tmp_path, rows, out, **extra):
    with open(tmp_path / "list.csv", "w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        w.writerows(rows)
    return settings_from(None, recipients=str(tmp_path / "list.csv"), template="zh",
                         title="2020-02-24 示例", org="示例街道", package="蔬菜",
                         date="2020-02-24", base_url="http://192.168.1.20:8470",
                         db=f"sqlite:///{tmp_path / 'ledger.db'}", out=str(out), quiet=True,
                         **extra)


@pytest.fixture
def apart(monkeypatch):
    """Every list counts as large; the calls to the separate process are counted."""
    calls = []
    real = processes.run_apart

    def counted(fn, *args, **kwargs):
        calls.append(fn.__name__)
        return real(fn, *args, **kwargs)

    monkeypatch.setattr(build, "CHECK_APART_FROM", 0)
    monkeypatch.setattr(processes, "run_apart", counted)
    return calls


def _households(n: int) -> list:
    return [Household(seq=i, recipient=Recipient(row=i + 1, id=str(i), name=f"示例{i}",
                                                 volunteer=VOLUNTEERS[i % 5]))
            for i in range(1, n + 1)]


def test_packed_households_read_like_the_tuple_they_stand_for():
    plain = _households(2 * BLOCK + 7)
    packed = Packed.of(plain)
    assert len(packed) == len(plain) and list(packed) == plain and packed == plain
    assert packed[0] == plain[0] and packed[-1] == plain[-1] and packed[BLOCK] == plain[BLOCK]
    assert packed[BLOCK - 3:BLOCK + 3] == plain[BLOCK - 3:BLOCK + 3]
    assert packed[::100] == plain[::100]
    with pytest.raises(IndexError):
        packed[len(plain)]
    again = pickle.loads(pickle.dumps(packed))
    assert list(again) == plain
    assert Packed.of([]) == [] and len(Packed.of([])) == 0
    # a fifth of the memory: the pickled blocks of 263 households against their objects
    assert sum(len(b) for b in packed._blocks) < 300 * len(plain)


def test_coded_households_get_their_code_and_url_when_read():
    from letterpress.ledger import codes

    plain = _households(5)
    given = [codes.new_canonical() for _ in plain]
    coded = Coded(Packed.of(plain), given, "http://192.0.2.7:8470")
    first = coded[0]
    assert first.recipient == plain[0].recipient and first.code.count("-") == 2
    assert first.code == codes.printed(given[0])
    assert first.url == codes.url_for("http://192.0.2.7:8470", given[0])
    assert [h.seq for h in coded] == [1, 2, 3, 4, 5] and coded[1:3] == list(coded)[1:3]
    with pytest.raises(ValueError):
        Coded(plain, given[:1], "http://192.0.2.7:8470")


def test_spilled_households_wait_in_an_unnamed_file_and_read_the_same(tmp_path, monkeypatch):
    import os
    import tempfile
    import threading

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    plain = _households(3 * BLOCK + 5)
    packed = Packed.of(plain)
    spilled = packed.spilled()
    assert spilled.spilled() is spilled and list(tmp_path.iterdir()) == []   # no name
    assert not any(isinstance(v, (bytes, tuple)) and v for v in vars(spilled).values()
                   if v is not spilled._last)          # no block held here
    assert spilled == plain and spilled[BLOCK + 1] == plain[BLOCK + 1]
    assert spilled[-1] == plain[-1] and spilled[5:BLOCK + 9] == plain[5:BLOCK + 9]
    assert list(pickle.loads(pickle.dumps(spilled))) == plain
    walks: list = []                                    # slips and run sheets at once
    threads = [threading.Thread(target=lambda: walks.append(list(spilled))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert walks == [plain] * 4

    def no_space(*args, **kwargs):
        raise OSError(28, os.strerror(28))

    monkeypatch.setattr(tempfile, "TemporaryFile", no_space)
    assert packed.spilled() is packed and packed == plain    # kept in memory instead


def test_codes_are_held_as_one_text_and_odd_ones_as_they_are():
    from letterpress.ledger import codes

    plain = _households(300)
    given = [codes.new_canonical() for _ in plain]
    coded = Coded(Packed.of(plain), given, "http://192.0.2.7:8470")
    assert coded._joined == "".join(given) and coded._listed == ()
    assert [h.code for h in coded] == [codes.printed(c) for c in given]
    assert coded[299].url == codes.url_for("http://192.0.2.7:8470", given[299])
    odd = given[:2] + ["ABC"] + given[3:]               # not one length: kept one by one
    mixed = Coded(plain, odd, "http://192.0.2.7:8470")
    assert mixed._listed == tuple(odd) and mixed[1].code == codes.printed(given[1])


def test_letter_names_are_made_when_read(tmp_path):
    from letterpress.pipeline import letters, outputs

    plain = _households(12)
    names = letters.LetterFiles(Packed.of(plain), 12)
    expected = [f"letters/{letters.letter_filename(h, 12)}" for h in plain]
    assert list(names) == expected and len(names) == 12
    assert names[0] == "letters/0001-示例1.docx" and names[-1] == expected[-1]
    assert names[3:5] == expected[3:5]
    planned = outputs.planned_files(names, ["林小舟", ""], pdf=False)
    walked = list(planned)
    assert walked == list(planned)                      # walked as often as needed
    assert walked[6:18] == expected and walked[-2:] == ["runsheets/01-林小舟.pdf",
                                                        "runsheets/02-unassigned.pdf"]


def test_a_large_list_checked_apart_builds_the_same_batch(tmp_path, apart, monkeypatch):
    rows = _rows(260)       # run sheets written beside the slips from 200 households on
    first = build.build(_settings(tmp_path, rows, tmp_path / "a", jobs=2))
    assert apart == ["_check_packed"]
    monkeypatch.setattr(build, "CHECK_APART_FROM", 1 << 40)
    second = build.build(_settings(tmp_path, rows, tmp_path / "b", jobs=2))
    assert apart == ["_check_packed"] and first.households == second.households == 260
    assert second.kept == 260                       # the same batch: every code kept

    def letters(folder):
        return {p.name: p.read_bytes() for p in sorted((folder / "letters").iterdir())}

    a, b = tmp_path / "a", tmp_path / "b"
    assert letters(a) == letters(b) and len(letters(a)) == 260
    assert (a / "manifest.csv").read_bytes() == (b / "manifest.csv").read_bytes()
    sheets = sorted(p.name for p in (a / "runsheets").iterdir())
    assert sheets == sorted(p.name for p in (b / "runsheets").iterdir()) and len(sheets) == 5
    for name in sheets:
        assert decoded_pages(a / "runsheets" / name) == decoded_pages(b / "runsheets" / name)
    assert decoded_pages(a / "slips.pdf") == decoded_pages(b / "slips.pdf")


def test_problems_found_apart_are_the_ones_found_here(tmp_path, apart, monkeypatch):
    rows = _rows(30)
    rows[4][0] = rows[3][0]                          # a duplicate id: rows 5 and 6
    settings = _settings(tmp_path, rows, tmp_path / "out")
    with pytest.raises(CheckFailed) as there:
        build.build(settings)
    monkeypatch.setattr(build, "CHECK_APART_FROM", 1 << 40)
    with pytest.raises(CheckFailed) as here:
        build.build(settings)
    assert apart == ["_check_packed"]
    assert [str(p) for p in there.value.problems] == [str(p) for p in here.value.problems]
    assert any("row 6" in str(p) for p in here.value.problems)
    assert not (tmp_path / "out").exists()

    monkeypatch.setattr(build, "CHECK_APART_FROM", 0)
    missing = settings.with_(template=str(tmp_path / "no-such.docx"))
    with pytest.raises(InputError) as error:
        build.build(missing)
    assert apart == ["_check_packed", "_check_packed"]
    assert error.value.code and "no-such.docx" in str(error.value) and error.value.hint


def test_run_sheets_go_to_their_process_a_few_households_at_a_time(monkeypatch):
    """At district size a volunteer has a hundred households: calls are cut by households
    as well as by sheets, so what waits for the second process stays small."""
    import threading

    from letterpress.pipeline import slipfiles

    monkeypatch.setattr(slipfiles, "HOUSEHOLDS_A_CALL", 10)
    monkeypatch.setattr(slipfiles, "SHEETS_A_CALL", 3)
    sizes = [4, 4, 4, 1, 1, 1, 1, 25, 2]
    sheets = ((f"v{k}", [None] * n, f"{k}.pdf") for k, n in enumerate(sizes))
    calls = list(slipfiles._calls(sheets, threading.Event()))
    assert [[len(s[1]) for s in call] for call in calls] == [
        [4, 4], [4, 1, 1], [1, 1], [25], [2]]
    stop = threading.Event()
    stop.set()
    assert list(slipfiles._calls(iter([("v", [None], "x.pdf")]), stop)) == []


def test_no_worker_is_forked_while_another_thread_runs(tmp_path, monkeypatch):
    """A fork copies only the thread that forks; a lock another thread held (an import
    under way) would stay held for ever in the worker, which then hangs. The run sheets'
    process is started before their thread, and workers started while other threads run
    (a build from the console, in a thread of the server) start fresh."""
    import multiprocessing.process
    import threading

    starts = []
    real = multiprocessing.process.BaseProcess.start

    def start(self):
        starts.append((type(self).__name__, threading.current_thread().name))
        return real(self)

    monkeypatch.setattr(multiprocessing.process.BaseProcess, "start", start)
    forked = multiprocessing.get_context("fork")
    monkeypatch.setattr(processes, "context", lambda households: forked)
    result = build.build(_settings(tmp_path, _rows(260), tmp_path / "out", jobs=2))
    assert result.households == 260 and len(list((tmp_path / "out" / "runsheets").iterdir())) == 5
    main = threading.main_thread().name
    assert len(starts) == 2 and all(s == ("ForkProcess", main) for s in starts), starts
    monkeypatch.undo()
    busy = threading.Event()
    other = threading.Thread(target=busy.wait)
    other.start()
    try:
        assert processes.context(10).get_start_method() == "forkserver"
    finally:
        busy.set()
        other.join()
