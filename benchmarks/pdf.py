"""PDF conversion: one LibreOffice worker against two, side by side in one run.

    python benchmarks/pdf.py [N] [--repeat 2] [--batch-size 40] [--no-naive] [--no-single]

Makes N (default 24) one-page Chinese letters with python-docx (fictional
households, generated here, so this runs from a fresh checkout with only the
runtime dependencies plus LibreOffice), then converts them all with
``letterpress.printing.libreoffice.convert`` at ``jobs=1`` and ``jobs=2``. Runs alternate and
the best of ``--repeat`` counts, so a busy machine disturbs the ratio less.
Every run includes making and removing the workers' LibreOffice profiles. The
CPU time LibreOffice used is shown too: when it is well below the wall time
times the jobs, other work on the machine took the CPUs and the ratio is low.
The naive way (one LibreOffice start per letter) is timed on up to 8 letters
for reference. Target: jobs=2 at least 1.6 times the throughput of jobs=1 on
a two-core machine.

Against the ordinary way: what a user types, ONE ``soffice --headless
--convert-to pdf --outdir OUT letters/*.docx`` call (with a fresh profile, as our
workers get), in ``--repeat`` pairs alternating with our pool at ``jobs=2``; both
must produce every letter's PDF. Target: the pool at least 1.8 times as fast
(median of the pairs' ratios) at 200 letters; the exit status is 1 when it is
below that by more than the machine's noise (10 %).
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

try:
    import resource
except ImportError:      # Windows
    resource = None

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from docx import Document  # noqa: E402
from docx.oxml.ns import qn  # noqa: E402
from docx.shared import Pt  # noqa: E402

from letterpress.printing import libreoffice as pdf  # noqa: E402

SURNAMES = "王李张刘陈杨黄赵吴周徐孙朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许"
GIVEN = ("秀兰", "建国", "文明", "桂兰", "凤英", "金凤", "学军", "淑英", "玉珍", "志强", "德华")
COMPOUNDS = ("沙湖小区", "电车宿舍", "九天公寓")
BODY = ("机关全体干部始终牵挂着社区的每一位居民，与奋战在一线的社区工作者并肩作战，"
        "努力帮助大家解决生活中的实际困难，守护大家的身体健康。")
FONT = "WenQuanYi Micro Hei"
SINGLE_TARGET = 1.8


def make_letters(folder: Path, n: int) -> list:
    rng = random.Random(2020)
    paths = []
    for seq in range(1, n + 1):
        name = rng.choice(SURNAMES) + rng.choice(GIVEN)
        doc = Document()
        normal = doc.styles["Normal"]
        normal.font.name = FONT
        normal.font.size = Pt(12)
        normal.element.get_or_add_rPr().rFonts.set(qn("w:eastAsia"), FONT)
        doc.add_heading("爱不隔离 抗疫必胜", 1)
        doc.add_paragraph(f"尊敬的{name}：")
        for _ in range(5):
            doc.add_paragraph(BODY * 2)
        doc.add_paragraph(f"{rng.choice(COMPOUNDS)}{rng.randint(1, 12)}栋{rng.randint(1, 6)}单元"
                          f"{rng.randint(1, 7)}0{rng.randint(1, 4)}室")
        doc.add_paragraph("青鱼嘴社区  2020年2月24日")
        path = folder / f"{seq:04d}-{name}.docx"
        doc.save(path)
        paths.append(path)
    return paths


def timed_convert(paths, out: Path, jobs: int, batch_size: int) -> tuple:
    """(wall seconds, CPU seconds LibreOffice used) for one ``pdf.convert`` call."""
    shutil.rmtree(out, ignore_errors=True)
    cpu = _children_cpu()
    start = time.perf_counter()
    result = pdf.convert(paths, out, jobs=jobs, batch_size=batch_size)
    elapsed = time.perf_counter() - start
    if result.failed:
        raise SystemExit(f"conversion failed: {result.failed}")
    return elapsed, _children_cpu() - cpu


def _children_cpu() -> float:
    if resource is None:
        return 0.0
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def naive(paths, out: Path, soffice: str) -> float:
    """One LibreOffice start per letter, one profile for all (as a script would do it)."""
    shutil.rmtree(out, ignore_errors=True)
    profile = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    start = time.perf_counter()
    for path in paths:
        subprocess.run([soffice, f"-env:UserInstallation={profile.as_uri()}", "--headless",
                        "--convert-to", "pdf", "--outdir", str(out), str(path)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    elapsed = time.perf_counter() - start
    shutil.rmtree(profile, ignore_errors=True)
    return elapsed


def single_call(paths, out: Path, soffice: str) -> float:
    """The ordinary way: one LibreOffice call converting every letter, in one process."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    profile = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    start = time.perf_counter()
    subprocess.run([soffice, f"-env:UserInstallation={profile.as_uri()}", "--headless",
                    "--convert-to", "pdf", "--outdir", str(out)] + [str(p) for p in paths],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    elapsed = time.perf_counter() - start
    shutil.rmtree(profile, ignore_errors=True)
    missing = [p.name for p in paths if not (out / (p.stem + ".pdf")).is_file()]
    if missing:
        raise SystemExit(f"the single soffice call made no PDF for {len(missing)} letters")
    return elapsed


def versus_single(paths, tmp: Path, soffice: str, repeat: int, batch_size: int) -> float:
    """Median ratio (single call's seconds / pool's seconds) over ``repeat`` alternating pairs."""
    ratios = []
    for k in range(repeat):
        order = ("pool", "single") if k % 2 == 0 else ("single", "pool")
        seconds = {}
        for way in order:
            if way == "pool":
                seconds[way] = timed_convert(paths, tmp / "pool", 2, batch_size)[0]
                made = sum(1 for p in (tmp / "pool").iterdir() if p.suffix == ".pdf")
                if made != len(paths):
                    raise SystemExit(f"the pool made {made} PDFs of {len(paths)}")
            else:
                seconds[way] = single_call(paths, tmp / "single", soffice)
        ratios.append(seconds["single"] / seconds["pool"])
        print(f"  pair {k + 1}: one soffice call {seconds['single']:.1f} s, our pool (jobs=2) "
              f"{seconds['pool']:.1f} s: {ratios[-1]:.2f}x")
    return statistics.median(ratios)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=24, help="letters (default 24)")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each, best counts")
    parser.add_argument("--batch-size", type=int, default=pdf.BATCH_SIZE)
    parser.add_argument("--no-naive", action="store_true", help="skip the one-start-per-letter run")
    parser.add_argument("--no-single", action="store_true",
                        help="skip the pairs against one soffice call for every letter")
    args = parser.parse_args()
    soffice = pdf.require_soffice()
    with tempfile.TemporaryDirectory(prefix="bench-pdf-") as tmp:
        tmp = Path(tmp)
        paths = make_letters(tmp, args.n)
        print(f"{args.n} letters, {os.cpu_count()} CPU(s), batch size {args.batch_size}, "
              f"best of {args.repeat}, load average {_load()}")
        best = {1: (float("inf"), 0.0), 2: (float("inf"), 0.0)}
        for _ in range(args.repeat):
            for jobs in (1, 2):
                best[jobs] = min(best[jobs], timed_convert(paths, tmp / f"out{jobs}", jobs,
                                                           args.batch_size))
        rate = {jobs: args.n / wall for jobs, (wall, _) in best.items()}
        if not args.no_naive:
            few = paths[:8]
            seconds = naive(few, tmp / "naive", soffice)
            print(f"  naive, one start per letter: {len(few) / seconds:6.2f} letters/s "
                  f"({seconds:.1f} s for {len(few)})")
        for jobs in (1, 2):
            wall, cpu = best[jobs]
            print(f"  jobs={jobs}: {rate[jobs]:6.2f} letters/s ({wall:.1f} s; LibreOffice used "
                  f"{cpu:.1f} CPU s, {cpu / wall / jobs:.0%} of {jobs} CPU)")
        ratio = rate[2] / rate[1]
        print(f"  jobs=2 / jobs=1: {ratio:.2f}x (target >= 1.6); load average now {_load()}")
        if args.no_single:
            return 0
        print(f"Our pool (jobs=2) against one `soffice --convert-to pdf *.docx` call, "
              f"{args.repeat} alternating pairs:")
        versus = versus_single(paths, tmp, soffice, args.repeat, args.batch_size)
        met = versus >= SINGLE_TARGET
        print(f"  median {versus:.2f}x (target >= {SINGLE_TARGET} at 200 letters: "
              f"{'met' if met else 'within noise' if versus >= SINGLE_TARGET * 0.9 else 'MISSED'}"
              f"); load average now {_load()}")
        return 0 if versus >= SINGLE_TARGET * 0.9 else 1


def _load() -> str:
    """The 1-minute load average: other work on the machine skews the figures."""
    return f"{os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "n/a"


if __name__ == "__main__":
    sys.exit(main())
