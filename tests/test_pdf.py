"""PDF conversion (LibreOffice pool) and print packs (pypdf).

The conversion tests run the real LibreOffice on small Chinese letters made
here with python-docx; hangs and crashes are played by a stand-in ``soffice``
script on PATH, since a real document that hangs LibreOffice is hard to make
on purpose.
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import require, require_program
from docx import Document
from docx.oxml.ns import qn
from docx.shared import Pt
from pypdf import PdfReader
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from letterpress.errors import (
    ExitStatus,
    InputError,
    LetterpressError,
    MissingToolError,
)
from letterpress.files import numbered_filename
from letterpress.printing import libreoffice as pdf
from letterpress.printing import packs as printpack

CJK_FONT = "WenQuanYi Micro Hei"
NAMES = ["王秀英", "李明华", "张桂兰", "刘建国", "陈玉珍", "杨淑芬", "赵德明"]
LONG = "刘建国"       # this letter has a second page
BODY = ("社区的全体工作人员始终把居民放在心上，与一线工作者站在一起，"
        "努力解决大家的困难，守护大家的健康。")


def make_letter(path: Path, name: str, pages: int = 1) -> Path:
    doc = Document()
    normal = doc.styles["Normal"]
    normal.font.name = CJK_FONT
    normal.font.size = Pt(12)
    normal.element.get_or_add_rPr().rFonts.set(qn("w:eastAsia"), CJK_FONT)
    doc.add_paragraph("爱不隔离 抗疫必胜")
    doc.add_paragraph(f"尊敬的{name}：")
    for page in range(pages):
        if page:
            doc.add_page_break()
        doc.add_paragraph(BODY * 2)
    doc.add_paragraph("青鱼嘴社区 2020年2月24日")
    doc.save(path)
    return path


def cjk_font_installed() -> bool:
    """The letters ask for WenQuanYi Micro Hei; LibreOffice finds it through fontconfig."""
    try:
        out = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True)
    except OSError:
        return False
    return CJK_FONT in out.stdout


@pytest.fixture(scope="module")
def letters(tmp_path_factory):
    folder = tmp_path_factory.mktemp("letters")
    paths = [make_letter(folder / f"{i:04d}-{name}.docx", name, 2 if name == LONG else 1)
             for i, name in enumerate(NAMES, start=1)]
    broken = folder / "0008-坏文件.docx"
    broken.write_bytes(random.Random(8).randbytes(4000))     # random bytes named .docx
    return paths, broken


@pytest.fixture(scope="module")
def converted(letters, tmp_path_factory):
    require_program("soffice", "libreoffice-writer-nogui")
    require(cjk_font_installed(), "no Chinese font installed (Debian package fonts-wqy-microhei)")
    paths, broken = letters
    out = tmp_path_factory.mktemp("pdf")
    seen = []
    result = pdf.convert(paths[:4] + [broken] + paths[4:], out, jobs=2,
                         progress=lambda *args: seen.append(args))
    return result, out, seen


def fonts_of(reader: PdfReader):
    """(name, embedded) for every font the pages use."""
    found = {}
    for page in reader.pages:
        fonts = page["/Resources"].get_object().get("/Font", {})
        for font in fonts.values():
            font = font.get_object()
            descendants = font.get("/DescendantFonts")
            target = descendants[0].get_object() if descendants else font
            desc = target.get("/FontDescriptor")
            desc = desc.get_object() if desc else {}
            found[str(font["/BaseFont"])] = any(k in desc for k in
                                                ("/FontFile", "/FontFile2", "/FontFile3"))
    return found


def check_clean(path: Path) -> None:
    """qpdf and pdfinfo find nothing wrong, and pypdf reads it strictly."""
    require_program("qpdf", "qpdf")
    require_program("pdfinfo", "poppler-utils")
    q = subprocess.run(["qpdf", "--check", str(path)], capture_output=True, text=True)
    assert q.returncode == 0 and "WARNING" not in q.stdout + q.stderr, q.stdout + q.stderr
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True)
    assert info.returncode == 0 and not info.stderr.strip(), info.stderr
    assert len(PdfReader(str(path), strict=True).pages) > 0


# ---------------------------------------------------------------------------
# Conversion with LibreOffice


def test_every_letter_converts_with_its_text_pages_and_fonts(converted, letters):
    result, out, _ = converted
    paths, broken = letters
    assert list(result.pdfs) == paths                      # input order, broken one left out
    for path, name in zip(paths, NAMES):
        made = result.pdfs[path]
        assert made == out / f"{path.stem}.pdf" and made.is_file()
        reader = PdfReader(str(made), strict=True)
        assert len(reader.pages) == (2 if name == LONG else 1), name
        text = "".join(page.extract_text() for page in reader.pages)
        assert name in text and "爱不隔离" in text
        fonts = fonts_of(reader)
        assert fonts and all(fonts.values()), fonts
        assert any("WenQuanYi" in f for f in fonts), fonts
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{p.stem}.pdf" for p in paths)


def test_a_damaged_docx_is_named_and_the_rest_completes(converted, letters):
    result, out, seen = converted
    _, broken = letters
    assert [path for path, _ in result.failed] == [broken]
    assert "could not open" in result.failed[0][1]
    assert not result.ok
    err = result.error()
    assert err.code == "pdf_failed" and err.exit_status == ExitStatus.PARTIAL
    assert err.message.startswith("1 of 8 letter(s)") and broken.name in str(err)
    assert seen[-1] == ("pdf", 8, 8)
    assert [done for _, done, _ in seen] == sorted(done for _, done, _ in seen)


def test_pdffonts_reports_every_font_embedded(converted):
    require_program("pdffonts", "poppler-utils")
    result, _, _ = converted
    for made in result.pdfs.values():
        lines = subprocess.run(["pdffonts", str(made)], capture_output=True,
                               text=True).stdout.splitlines()[2:]
        assert lines and all(line.split()[-5] == "yes" for line in lines), lines


def test_a_converted_page_shows_the_chinese_text(converted, tmp_path):
    """Rendered by poppler: the text is drawn (not left out) and maps back to the name."""
    require_program("pdftoppm", "poppler-utils")
    require_program("pdftotext", "poppler-utils")
    from PIL import Image

    result, _, _ = converted
    first = next(iter(result.pdfs.values()))
    subprocess.run(["pdftoppm", "-png", "-r", "40", "-f", "1", "-l", "1", str(first),
                    str(tmp_path / "p")], check=True)
    image = Image.open(next(tmp_path.glob("p*.png"))).convert("L")
    dark = sum(image.histogram()[:128])          # pixels darker than mid-grey
    assert dark > 500, dark
    text = subprocess.run(["pdftotext", str(first), "-"], capture_output=True, text=True).stdout
    assert NAMES[0] in text and "守护大家的健康" in text


# ---------------------------------------------------------------------------
# letters.pdf and print packs


def titles_and_pages(path: Path):
    reader = PdfReader(str(path), strict=True)

    def walk(items, depth=0):
        for item in items:
            if isinstance(item, list):
                yield from walk(item, depth + 1)
            else:
                yield depth, item.title, reader.get_destination_page_number(item)
    return list(walk(reader.outline)), reader


def test_letters_pdf_has_one_bookmark_per_letter(converted, tmp_path):
    result, _, _ = converted
    pdfs = list(result.pdfs.values())
    titles = [printpack.letter_title(i, name) for i, name in enumerate(NAMES, start=1)]
    ranges = printpack.merge_letters(pdfs, titles, tmp_path / "letters.pdf", title="测试批次")
    assert [len(r) for r in ranges] == [2 if n == LONG else 1 for n in NAMES]
    assert ranges[0].start == 0 and all(a.stop == b.start for a, b in zip(ranges, ranges[1:]))
    outline, reader = titles_and_pages(tmp_path / "letters.pdf")
    assert outline == [(0, t, r.start) for t, r in zip(titles, ranges)]
    assert titles[0] == "0001 王秀英"
    for name, r in zip(NAMES, ranges):
        assert all(name in reader.pages[i].extract_text() or i > r.start for i in r)
    assert len(reader.pages) == 8
    check_clean(tmp_path / "letters.pdf")
    assert [p.name for p in tmp_path.iterdir()] == ["letters.pdf"]   # no temporary left


def test_duplex_pads_each_letter_to_an_even_page_count(converted, tmp_path):
    result, _, _ = converted
    pdfs = list(result.pdfs.values())
    ranges = printpack.merge_letters(pdfs, NAMES, tmp_path / "letters.pdf", duplex=True)
    assert all(len(r) % 2 == 0 for r in ranges) and ranges[-1].stop == 14
    outline, reader = titles_and_pages(tmp_path / "letters.pdf")
    assert [page for _, _, page in outline] == [r.start for r in ranges]
    for name, r in zip(NAMES, ranges):
        assert name in reader.pages[r.start].extract_text()
        blank = reader.pages[r.start + 1].extract_text().strip() == ""
        assert blank == (name != LONG)          # a blank back page, except after a 2-page letter
    check_clean(tmp_path / "letters.pdf")


def marked_pdf(path: Path, marks) -> Path:
    """A PDF with one page per mark (ASCII text, so no font is needed)."""
    c = canvas.Canvas(str(path), pagesize=A4)
    for mark in marks:
        c.drawString(72, 720, mark)
        c.showPage()
    c.save()
    return path


def test_print_packs_hold_letters_then_slips_then_run_sheet(converted, tmp_path):
    result, _, _ = converted
    pdfs = list(result.pdfs.values())
    letters_pdf = tmp_path / "letters.pdf"
    ranges = printpack.merge_letters(pdfs, NAMES, letters_pdf, duplex=True)
    slips = marked_pdf(tmp_path / "slips.pdf", ["SLIPS-A", "SLIPS-B"])
    sheet_a = marked_pdf(tmp_path / "run-a.pdf", ["RUNSHEET-A"])
    sheet_b = marked_pdf(tmp_path / "run-b.pdf", ["RUNSHEET-B"])
    route_a, route_b = [2, 0, 1], [3, 4, 5, 6]      # volunteer A walks 张, 王, 李
    packs = [
        printpack.Pack(tmp_path / "print" / numbered_filename(1, "李明", "unassigned"),
                       printpack.volunteer_sections(
                           letters_pdf, [ranges[i] for i in route_a], [NAMES[i] for i in route_a],
                           printpack.Section(printpack.section_title("slips"), slips, [range(0, 1)]),
                           sheet_a), title="李明"),
        printpack.Pack(tmp_path / "print" / numbered_filename(2, "周芳", "unassigned"),
                       printpack.volunteer_sections(
                           letters_pdf, [ranges[i] for i in route_b], [NAMES[i] for i in route_b],
                           None, sheet_b, lang="en")),
        printpack.Pack(tmp_path / "print" / numbered_filename(2, "周芳", "unassigned", suffix="-labels.pdf"),
                       [printpack.Section("Slips", slips, [range(1, 2)])]),
    ]
    seen = []
    sections = printpack.write_print_packs(packs, duplex=True,
                                           progress=lambda *a: seen.append(a))
    assert seen[-1] == ("print packs", 3, 3)
    assert sorted(p.name for p in (tmp_path / "print").iterdir()) == [
        "01-李明.pdf", "02-周芳-labels.pdf", "02-周芳.pdf"]

    outline, reader = titles_and_pages(tmp_path / "print" / "01-李明.pdf")
    assert [(d, t) for d, t, _ in outline] == [
        (0, "慰问信"), (1, "张桂兰"), (1, "王秀英"), (1, "李明华"), (0, "取件单"), (0, "任务单")]
    texts = [page.extract_text() for page in reader.pages]
    firsts = [p for d, _, p in outline if d == 1]
    assert [NAMES[i] in texts[p] for i, p in zip(route_a, firsts)] == [True] * 3
    slip_page = next(p for d, t, p in outline if t == "取件单")
    sheet_page = next(p for d, t, p in outline if t == "任务单")
    assert slip_page == 6 and "SLIPS-A" in texts[slip_page]
    assert sheet_page == 8 and "RUNSHEET-A" in texts[sheet_page]   # slips padded to a sheet
    assert len(texts) == 9 and [r.start for r in sections[0]] == [0, 6, 8]

    outline, reader = titles_and_pages(tmp_path / "print" / "02-周芳.pdf")
    assert [t for d, t, _ in outline if d == 0] == ["Letters", "Run sheet"]
    assert "RUNSHEET-B" in reader.pages[-1].extract_text()
    assert len(reader.pages) == sum(len(ranges[i]) for i in route_b) + 1
    labels = PdfReader(str(tmp_path / "print" / "02-周芳-labels.pdf"), strict=True)
    assert [p.extract_text().strip() for p in labels.pages] == ["SLIPS-B"]
    for pack in packs:
        check_clean(pack.out)


def test_print_pack_without_duplex_adds_no_blank_pages(tmp_path):
    a = marked_pdf(tmp_path / "a.pdf", ["A1", "A2", "A3"])
    b = marked_pdf(tmp_path / "b.pdf", ["B1"])
    ranges = printpack.print_pack(tmp_path / "p.pdf", [
        printpack.Section("First", a, [range(2, 3), range(0, 1)], ["third", "first"]),
        printpack.Section("Empty", b, []),
        printpack.Section("Second", b)])
    reader = PdfReader(str(tmp_path / "p.pdf"), strict=True)
    assert [p.extract_text().strip() for p in reader.pages] == ["A3", "A1", "B1"]
    assert ranges == [range(0, 2), range(2, 3)]
    outline, _ = titles_and_pages(tmp_path / "p.pdf")
    assert outline == [(0, "First", 0), (1, "third", 0), (1, "first", 1), (0, "Second", 2)]
    with pytest.raises(ValueError):
        printpack.print_pack(tmp_path / "q.pdf", [printpack.Section("X", b, [range(0, 2)])])
    assert not (tmp_path / "q.pdf").exists()


def test_an_unreadable_pdf_is_named(tmp_path):
    bad = tmp_path / "0001-王秀英.pdf"
    bad.write_bytes(b"%PDF-1.4 not really")
    with pytest.raises(LetterpressError) as info:
        printpack.merge_letters([bad], ["0001 王秀英"], tmp_path / "letters.pdf")
    assert info.value.code == "bad_pdf" and info.value.where.file == str(bad)
    assert not (tmp_path / "letters.pdf").exists()


# ---------------------------------------------------------------------------
# Hangs, crashes and a missing LibreOffice (a stand-in soffice on PATH)

FAKE_SOFFICE = r'''#!{python}
"""Stand-in for soffice: converts in order, hangs or dies on marked file names."""
import json, os, signal, sys, time, urllib.parse
args = sys.argv[1:]
profile = urllib.parse.urlparse(
    next(a for a in args if a.startswith("-env:UserInstallation=")).split("=", 1)[1]).path
outdir = args[args.index("--outdir") + 1]
files = args[args.index("--outdir") + 2:]
os.makedirs(profile, exist_ok=True)
lock = os.path.join(profile, ".lock")
shared = os.path.exists(lock)
with open(lock, "w") as fh:
    fh.write(str(os.getpid()))
with open(os.environ["FAKE_SOFFICE_LOG"], "a") as fh:
    fh.write(json.dumps({{"pid": os.getpid(), "profile": profile, "shared": shared,
                          "files": [os.path.basename(os.path.realpath(f)) for f in files]}}) + "\n")
for f in files:
    name = os.path.basename(os.path.realpath(f))
    if "hang" in name:   # like soffice.bin under oosplash: the stuck one is a child
        import subprocess
        child = subprocess.Popen(["sleep", "3600"])
        with open(os.environ["FAKE_SOFFICE_LOG"], "a") as fh:
            fh.write(json.dumps({{"pid": child.pid, "child": True}}) + "\n")
        child.wait()
    if "crash" in name:
        os.kill(os.getpid(), signal.SIGKILL)
    with open(f, "rb") as fh:
        if fh.read(2) != b"PK":
            print("Error: source file could not be loaded", file=sys.stderr)
            continue
    stem = os.path.splitext(os.path.basename(f))[0]
    with open(os.path.join(outdir, stem + ".pdf"), "wb") as fh:
        fh.write(b"%PDF-1.4\n% " + name.encode() + b"\n%%EOF\n")
    time.sleep(0.02)
os.remove(lock)
'''


@pytest.fixture
def fake_soffice(tmp_path, monkeypatch):
    if os.name != "posix":
        pytest.skip("the stand-in soffice is a POSIX script")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "soffice"
    script.write_text(FAKE_SOFFICE.format(python=sys.executable))
    script.chmod(0o755)
    log = tmp_path / "soffice-log.jsonl"
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("LETTERPRESS_SOFFICE", raising=False)
    monkeypatch.setenv("FAKE_SOFFICE_LOG", str(log))
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    assert pdf.find_soffice() == str(script)

    def runs():
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return runs, temp


def gone(pid: int, wait: float = 5.0) -> bool:
    """True once ``pid`` has ended (a zombie waiting to be reaped counts as ended)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            os.kill(pid, 0)
            with open(f"/proc/{pid}/stat") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except (ProcessLookupError, FileNotFoundError):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def small_docx(path: Path) -> Path:
    doc = Document()
    doc.add_paragraph(path.stem)
    doc.save(path)
    return path


def test_a_hang_and_a_crash_are_isolated_and_the_rest_completes(tmp_path, fake_soffice):
    runs, temp = fake_soffice
    src = tmp_path / "src"
    src.mkdir()
    names = ["01-a", "02-b", "03-hang", "04-c", "05-d", "06-crash", "07-e", "08-f", "09-g"]
    paths = [small_docx(src / f"{n}.docx") for n in names]
    broken = src / "10-broken.docx"
    broken.write_bytes(b"not a word file")
    result = pdf.convert(paths + [broken], tmp_path / "out", jobs=2, timeout=1.5, batch_size=4)

    failed = {path.name: reason for path, reason in result.failed}
    assert sorted(failed) == ["03-hang.docx", "06-crash.docx", "10-broken.docx"]
    assert "did not finish it within 1.5 s" in failed["03-hang.docx"]
    assert "stopped unexpectedly" in failed["06-crash.docx"]
    assert "could not open" in failed["10-broken.docx"]
    good = [p for p in paths if "hang" not in p.name and "crash" not in p.name]
    assert list(result.pdfs) == good
    for path in good:
        assert path.name.encode() in result.pdfs[path].read_bytes()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        f"{p.stem}.pdf" for p in good)

    everything = runs()
    log = [run for run in everything if not run.get("child")]
    assert len(everything) > len(log)
    assert not any(run["shared"] for run in log)             # never two on one profile
    assert len({run["profile"] for run in log}) == 2
    planned = [len(r) for r in pdf.plan_batches(10, 2, 4)]
    assert max(len(run["files"]) for run in log) == max(planned) > 1   # many files per start
    for culprit in ("03-hang.docx", "06-crash.docx", "10-broken.docx"):
        assert [culprit] in [run["files"] for run in log]    # retried on its own
        assert sum(culprit in run["files"] for run in log) == 2
    assert all(gone(run["pid"]) for run in everything)      # every process was stopped
    assert list(temp.iterdir()) == []                        # profiles removed


def test_letterpress_gives_up_when_every_letter_hangs(tmp_path, fake_soffice):
    runs, temp = fake_soffice
    src = tmp_path / "src"
    src.mkdir()
    paths = [small_docx(src / f"{i:02d}-hang.docx") for i in range(1, 6)]
    with pytest.raises(LetterpressError) as info:
        pdf.convert(paths, tmp_path / "out", jobs=2, timeout=0.5)
    assert info.value.code == "soffice_failed"
    assert "hang" in str(info.value)
    assert list(temp.iterdir()) == []
    assert [p.name for p in (tmp_path / "out").iterdir()] == []
    assert all(gone(run["pid"]) for run in runs())


def test_missing_soffice_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("LETTERPRESS_SOFFICE", raising=False)
    monkeypatch.setattr(pdf, "SOFFICE_PATHS", ())
    assert pdf.find_soffice() is None
    with pytest.raises(MissingToolError) as info:
        pdf.convert([tmp_path / "0001-王秀英.docx"], tmp_path / "out")
    err = info.value
    assert err.code == "no_soffice" and "LibreOffice" in err.message
    assert "apt install libreoffice-writer-nogui" in err.hint
    assert "Windows and macOS" in err.hint and ".docx" in err.hint
    assert "How to fix" in str(err)
    assert not (tmp_path / "out").exists()


def test_find_soffice_tries_the_install_places(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("LETTERPRESS_SOFFICE", raising=False)
    app = tmp_path / "LibreOffice.app" / "soffice"
    app.parent.mkdir()
    app.write_text("")
    monkeypatch.setattr(pdf, "SOFFICE_PATHS", (str(tmp_path / "nowhere"), str(app)))
    assert pdf.find_soffice() == str(app)
    assert pdf.require_soffice() == str(app)


def test_batches_are_even_and_shared_across_jobs():
    sizes = lambda *a: [len(r) for r in pdf.plan_batches(*a)]  # noqa: E731
    assert sizes(24, 1) == [24]
    assert sizes(24, 2) == [12, 12]
    assert sizes(100, 2, 40) == [25, 25, 25, 25]
    assert sizes(3, 4) == [1, 1, 1]
    assert pdf.plan_batches(0, 2) == []
    plan = pdf.plan_batches(1000, 3, 40)
    assert sum(map(len, plan)) == 1000 and max(map(len, plan)) <= 40 and len(plan) % 3 == 0


def test_two_letters_with_one_pdf_name_are_refused(tmp_path, fake_soffice):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    one = small_docx(tmp_path / "a" / "0001-王秀英.docx")
    two = small_docx(tmp_path / "b" / "0001-王秀英.docx")
    with pytest.raises(InputError) as info:
        pdf.convert([one, two], tmp_path / "out")
    assert info.value.code == "duplicate_pdf_name"


def test_a_missing_input_is_reported_without_stopping_the_rest(tmp_path, fake_soffice,
                                                               monkeypatch):
    monkeypatch.chdir(tmp_path)                   # relative paths, as a user would type them
    one = small_docx(Path("0001-a.docx"))
    result = pdf.convert([Path("0002-gone.docx"), one], Path("out"))
    assert result.pdfs == {one: Path("out") / "0001-a.pdf"}
    assert b"0001-a.docx" in (tmp_path / "out" / "0001-a.pdf").read_bytes()
    assert result.failed == [(Path("0002-gone.docx"), "the file does not exist")]


def test_merging_lets_go_of_each_letter(tmp_path, monkeypatch):
    """Thousands of letters must not all stay open: at writing time no source is held."""
    import gc

    from pypdf import PdfWriter

    letters = [marked_pdf(tmp_path / f"{i:04d}.pdf", [f"L{i}"]) for i in range(40)]
    held = []
    real_write = PdfWriter.write

    def counting_write(self, stream):
        gc.collect()
        held.append(sum(isinstance(o, PdfReader) for o in gc.get_objects()))
        return real_write(self, stream)

    monkeypatch.setattr(PdfWriter, "write", counting_write)
    ranges = printpack.merge_letters(letters, [f"{i:04d}" for i in range(40)],
                                     tmp_path / "letters.pdf")
    assert held[0] <= 1 and ranges[-1] == range(39, 40)     # the last one, at most
