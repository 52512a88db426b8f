"""`build --pdf` and `letterpress pdf`: what goes to the printer, checked page by page."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pypdf
import pytest
from clitools import manifest, run
from conftest import require_program


def outline(reader):
    def walk(items, depth=0):
        for item in items:
            if isinstance(item, list):
                yield from walk(item, depth + 1)
            else:
                yield depth, item.title, reader.get_destination_page_number(item)
    return list(walk(reader.outline))


def fonts_embedded(path: Path) -> bool:
    out = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, check=True)
    rows = out.stdout.splitlines()[2:]
    return bool(rows) and all(row.split()[-5] == "yes" for row in rows)


def qpdf_clean(path: Path) -> bool:
    res = subprocess.run(["qpdf", "--check", str(path)], capture_output=True, text=True)
    return res.returncode == 0 and "WARNING" not in res.stdout + res.stderr


@pytest.fixture(scope="module")
def printed(tmp_path_factory):
    require_program("soffice", "libreoffice-writer-nogui")
    require_program("pdffonts", "poppler-utils")
    require_program("qpdf", "qpdf")
    tmp = tmp_path_factory.mktemp("print")
    out, db = tmp / "demo", f"sqlite:///{tmp / 'ledger.db'}"
    r = run("demo", "--out", out, "--db", db, "--base-url", "http://192.168.1.20:8470",
            "--pdf", "--duplex", "--jobs", 2, "-q")
    assert "print:" in r.output
    return out, db


def test_letters_pdf_has_every_letter_in_order_with_bookmarks(printed):
    out, _ = printed
    rows = manifest(out / "manifest.csv")
    reader = pypdf.PdfReader(str(out / "letters.pdf"), strict=True)
    marks = outline(reader)
    assert [title for _, title, _ in marks] == [f"{int(r['seq']):04d} {r['name']}" for r in rows]
    assert all(depth == 0 for depth, _, _ in marks)               # one flat bookmark each
    firsts = [page for _, _, page in marks]
    assert firsts == sorted(firsts) and firsts[0] == 0
    assert all(page % 2 == 0 for page in firsts)                    # --duplex: odd pages only
    for row, first in zip(rows, firsts):
        assert f"尊敬的{row['name']}" in reader.pages[first].extract_text().replace(" ", "")
    assert fonts_embedded(out / "letters.pdf") and qpdf_clean(out / "letters.pdf")


def test_one_print_pack_per_volunteer_in_walking_order(printed):
    out, _ = printed
    rows = manifest(out / "manifest.csv")
    packs = sorted((out / "print").iterdir())
    sheets = sorted((out / "runsheets").iterdir())
    assert [p.name for p in packs] == [s.name for s in sheets]      # print/ holds only these
    volunteers = list(dict.fromkeys(r["volunteer"] for r in rows))
    for index, (pack, volunteer) in enumerate(zip(packs, volunteers), start=1):
        assert pack.name.startswith(f"{index:02d}-") and volunteer in pack.name
        mine = [r for r in rows if r["volunteer"] == volunteer]
        reader = pypdf.PdfReader(str(pack), strict=True)
        marks = outline(reader)
        top = [(title, page) for depth, title, page in marks if depth == 0]
        assert [t for t, _ in top] == ["慰问信", "取件单", "任务单"]
        letters = [(title, page) for depth, title, page in marks if depth == 1]
        assert [t for t, _ in letters] == [f"{int(r['seq']):04d} {r['name']}" for r in mine]
        for (_, page), row in zip(letters, mine):
            assert f"尊敬的{row['name']}" in reader.pages[page].extract_text().replace(" ", "")
        slips_page, sheet_page = top[1][1], top[2][1]
        assert slips_page % 2 == 0 and sheet_page % 2 == 0          # fresh sheets (duplex)
        slip_text = "".join(reader.pages[i].extract_text() for i in range(slips_page, sheet_page))
        for row in mine:
            assert row["code"] in slip_text
        others = [r for r in rows if r["volunteer"] != volunteer]
        assert not any(r["code"] in slip_text for r in others)
        assert volunteer in reader.pages[sheet_page].extract_text()
        assert fonts_embedded(pack) and qpdf_clean(pack)


def test_pdf_again_with_label_slips_in_a_second_file(printed):
    out, db = printed
    run("slips", "--db", db, "--layout", "label-100x150", "-q")
    r = run("pdf", "--db", db, "-q")
    assert "40 letters converted" in r.output
    names = sorted(p.name for p in (out / "print").iterdir())
    assert len(names) == 16
    pack_name = next(n for n in names if n.startswith("01-") and not n.endswith("-labels.pdf"))
    assert pack_name.replace(".pdf", "-labels.pdf") in names
    labels = pypdf.PdfReader(str(out / "print" / pack_name.replace(".pdf", "-labels.pdf")),
                             strict=True)
    assert len(labels.pages) == len([r for r in manifest(out / "manifest.csv") if r["volunteer"] in pack_name])
    box = labels.pages[0].mediabox
    assert (round(float(box.width) / 72 * 25.4), round(float(box.height) / 72 * 25.4)) == (100, 150)
    pack = pypdf.PdfReader(str(out / "print" / pack_name), strict=True)
    assert [t for d, t, _ in outline(pack) if d == 0] == ["慰问信", "任务单"]


def test_pdf_without_libreoffice_says_how_to_install_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("LETTERPRESS_SOFFICE", str(tmp_path / "no-such-soffice"))
    monkeypatch.setattr("letterpress.printing.libreoffice.SOFFICE_NAMES", ())
    monkeypatch.setattr("letterpress.printing.libreoffice.SOFFICE_PATHS", ())
    out = tmp_path / "demo"
    r = run("demo", "--out", out, "--db", f"sqlite:///{tmp_path / 'l.db'}", "--pdf", ok=False)
    assert r.exit_code == 1
    assert "libreoffice-writer-nogui" in r.stderr and ".docx" in r.stderr
    assert not out.exists()
    assert not (tmp_path / "l.db").exists()
