"""The whole `letterpress letters` command against the obvious docxtpl loop, in one run.

    python benchmarks/letters.py [--n 2000] [--jobs 1 2] [--naive-n N] [--fallback-n N]

Both sides are timed as whole processes from start-up to exit, on the same
fictional list (a CSV made here) and the built-in Chinese letter:

- ours: ``letterpress letters`` (check, every letter, letters.docx, manifest.csv)
  at each ``--jobs`` value;
- the obvious way: read the CSV, a fresh ``docxtpl.DocxTemplate`` per household,
  ``render`` + ``save``, then letters.docx by appending every letter's body to the
  first with python-docx, and the manifest.

Peak memory (max RSS of the process) is shown for ours at N and at N/4: it must
not grow with N. ``--fallback-n`` also times ``letterpress letters`` on that many
households with ``engine = "docxtpl"`` (every letter rendered by docxtpl in the sandbox,
letters.docx put together by docxcompose: what a template the fast path cannot do costs). ``--naive-n`` times the obvious way on fewer households and
scales its time per letter to N (default: all N, which takes minutes).
"""
from __future__ import annotations

import argparse
import copy
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import fictional  # noqa: E402

TEMPLATE = ROOT / "templates" / "letter-zh.docx"
COMMON = ["--batch", "2020-02-24 benchmark", "--org", "某某街道办事处", "--date", "2020-02-24",
          "--package", "肉制品、蔬菜", "--template", str(TEMPLATE)]


def run(cmd) -> tuple:
    """Wall seconds and peak RSS (MiB) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    err = proc.stderr.read().decode("utf-8", "replace")
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(map(str, cmd))}\n{err}")
    return seconds, usage.ru_maxrss / 1024


def ours(csv_path: Path, out: Path, jobs: int, config: Optional[Path] = None) -> tuple:
    extra = ["-c", str(config)] if config else []
    return run([sys.executable, "-m", "letterpress.cli", "letters", "-r", str(csv_path),
                "-o", str(out), "-q", "--jobs", str(jobs)] + COMMON + extra)


def naive_worker(csv_path: str, out: str) -> None:
    """The obvious way, in full: what one would write with docxtpl and python-docx alone."""
    from docx import Document
    from docx.enum.text import WD_BREAK
    from docxtpl import DocxTemplate
    from jinja2 import Environment, StrictUndefined

    out_dir = Path(out)
    (out_dir / "letters").mkdir(parents=True, exist_ok=True)
    files = []
    for ctx in fictional.obvious_contexts(csv_path, batch="2020-02-24 benchmark",
                                          org="某某街道办事处", package="肉制品、蔬菜"):
        tpl = DocxTemplate(str(TEMPLATE))
        tpl.render(ctx, jinja_env=Environment(autoescape=True, undefined=StrictUndefined))
        name = out_dir / "letters" / f"{ctx['seq']:04d}-{ctx['name']}.docx"
        tpl.save(str(name))
        files.append((ctx["seq"], ctx, name))
    merged = Document(str(files[0][2]))
    body = merged.element.body
    for _, _, path in files[1:]:
        merged.add_paragraph().add_run().add_break(WD_BREAK.PAGE)
        for element in Document(str(path)).element.body:
            if not element.tag.endswith("sectPr"):
                body.insert(len(body) - 1, copy.deepcopy(element))
    merged.save(str(out_dir / "letters.docx"))
    with open(out_dir / "manifest.csv", "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["seq", "id", "name", "address", "volunteer", "letter"])
        for seq, ctx, path in files:
            writer.writerow([seq, ctx["id"], ctx["name"], ctx["address"], ctx["volunteer"],
                             f"letters/{path.name}"])


def naive(csv_path: Path, out: Path) -> tuple:
    return run([sys.executable, str(Path(__file__).resolve()), "--naive-worker", str(csv_path),
                str(out)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="households (default 2000)")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--naive-n", type=int, default=None,
                        help="time the obvious way on this many and scale to N")
    parser.add_argument("--fallback-n", type=int, default=0,
                        help="also time the docxtpl fallback on this many households")
    parser.add_argument("--naive-worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.naive_worker:
        naive_worker(*args.naive_worker)
        return
    n = args.n
    naive_n = min(args.naive_n or n, n)
    (ROOT / "output").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".bench-", dir=ROOT / "output") as tmp:
        tmp = Path(tmp)
        big = fictional.write_csv(tmp / "list.csv", n)
        quarter = fictional.write_csv(tmp / "quarter.csv", max(1, n // 4))
        sample = fictional.write_csv(tmp / "sample.csv", naive_n)
        print(f"letterpress letters, {n} households, built-in Chinese letter "
              f"({os.cpu_count()} cores)")
        results = {}
        for jobs in args.jobs:
            secs, rss = ours(big, tmp / f"ours-{jobs}", jobs)
            results[jobs] = secs
            print(f"  ours --jobs {jobs}: {secs:7.2f} s  {secs / n * 1000:6.2f} ms/letter  "
                  f"peak {rss:5.0f} MiB")
        q_secs, q_rss = ours(quarter, tmp / "ours-quarter", args.jobs[0])
        print(f"  ours at N/4 ({max(1, n // 4)}): peak {q_rss:5.0f} MiB (memory must not grow "
              "with N)")
        secs, rss = naive(sample, tmp / "naive")
        per = secs / naive_n
        scaled = "" if naive_n == n else f" (timed on {naive_n}, scaled to {n})"
        print(f"  obvious docxtpl loop: {per * n:7.2f} s  {per * 1000:6.2f} ms/letter  "
              f"peak {rss:5.0f} MiB{scaled}")
        for jobs, s in results.items():
            print(f"  ratio --jobs {jobs}: {per * n / s:6.1f}x faster than the obvious way")
        if 1 in results and 2 in results:
            print(f"  --jobs 2 against --jobs 1: {results[1] / results[2]:.2f}x")
        if args.fallback_n:
            fallback(tmp, args.fallback_n, per, results[args.jobs[0]] / n)


def fallback(tmp: Path, count: int, naive_per: float, fast_per: float) -> None:
    """``letterpress letters`` with ``engine = "docxtpl"`` on ``count`` households."""
    listing = fictional.write_csv(tmp / "fallback.csv", count)
    config = tmp / "letterpress.toml"
    config.write_text('[batch]\nengine = "docxtpl"\n', encoding="utf-8")
    secs, rss = ours(listing, tmp / "fallback", 1, config)
    per = secs / count
    print(f"  fallback (engine = \"docxtpl\"), {count} households: {secs:7.2f} s  "
          f"{per * 1000:6.2f} ms/letter  peak {rss:5.0f} MiB; "
          f"{per / fast_per:.0f}x the fast path's time a letter, "
          f"{naive_per / per:.2f}x the obvious loop's speed")


if __name__ == "__main__":
    main()
