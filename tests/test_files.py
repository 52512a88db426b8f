import csv

import pytest

from letterpress.files import (
    atomic_open,
    safe_filename,
    spreadsheet_safe,
    staged_dir,
    write_csv,
)


def test_atomic_open_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(target, "w") as fh:
            fh.write("half")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_staged_dir_replaces_only_on_success(tmp_path):
    final = tmp_path / "letters"
    final.mkdir()
    (final / "a.docx").write_text("old")
    with pytest.raises(ValueError):
        with staged_dir(final) as d:
            (d / "b.docx").write_text("new")
            raise ValueError
    assert sorted(p.name for p in final.iterdir()) == ["a.docx"]
    with staged_dir(final) as d:
        (d / "b.docx").write_text("new")
    assert sorted(p.name for p in final.iterdir()) == ["b.docx"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["letters"]


def test_csv_has_bom_and_neutralises_formulas(tmp_path):
    path = tmp_path / "m.csv"
    write_csv(path, ["name", "note"], [["王秀英", "=HYPERLINK(\"x\")"], ["李明", "-1"]])
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    assert rows[1] == ["王秀英", "'=HYPERLINK(\"x\")"]
    assert rows[2] == ["李明", "'-1"]
    assert spreadsheet_safe("@SUM(A1)") == "'@SUM(A1)"
    assert spreadsheet_safe("13812345678") == "13812345678"


def test_safe_filename_keeps_chinese():
    assert safe_filename("王秀英") == "王秀英"
    assert safe_filename("a/b:c*?") == "a_b_c"
    assert safe_filename("  ") == "household"
    assert safe_filename("Li Ming") == "Li_Ming"
