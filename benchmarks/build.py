"""The whole `letterpress build` for a district-sized batch, against the obvious loop, in one run.

    python benchmarks/build.py [--n 10000] [--jobs 2] [--naive-n 100] [--stages]

Ours is the real command, run as a child process from start-up to exit on a
fictional list (a CSV made here, see ``fictional.py``) and the built-in
Chinese letter::

    python -m letterpress.cli build -r list.csv -t zh --batch ... --date 2020-02-24
        --base-url http://192.168.1.20:8470 --db sqlite:///TMP/ledger.db -o TMP/out -q --jobs J

It writes every letter, letters.docx, slips.pdf, one run sheet per volunteer,
manifest.csv and the SQLite ledger. Printed: wall time, the peak memory of the
largest process (``ru_maxrss`` from ``os.wait4``) and, on Linux, the peak of
the whole process tree (the build and its worker processes together, sampled
from /proc every 50 ms as proportional set size, so pages the workers share
with their parent count once).

The obvious way, timed on ``--naive-n`` households in a child process and
scaled to N: a fresh ``docxtpl.DocxTemplate`` per household, ``render`` +
``save``; then one slip per household on an A4 sheet of eight, with its text
and ``qrcode.make(url)`` as a PIL image placed with reportlab's ``drawImage``.
It does less than ours (no run sheets, no letters.docx, no ledger, no manifest)
and its start-up is not counted, so the ratio favours it.

``--stages`` runs the build once more inside a child process with a timer
around each stage (check, ledger, letters, slips, run sheets, manifest), to
show where the time goes. Output is written under the repository's
``output/`` folder (the disk real batches go to) and removed afterwards.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import fictional  # noqa: E402

TEMPLATE = ROOT / "templates" / "letter-zh.docx"
TITLE = "2020-02-24 build benchmark"
ORG = "某某街道办事处"
PACKAGE = "肉制品、蔬菜"
BASE_URL = "http://192.168.1.20:8470"
TARGET_SECONDS = 60.0
TARGET_MIB = 500.0


# ---------------------------------------------------------------------------
# Measuring a child process: wall time, ru_maxrss, sampled process-tree memory

def _children_of() -> dict:
    """ppid -> [pid] for every process now running (Linux /proc)."""
    tree: dict = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def _memory_kib(pid: int) -> int:
    """Proportional set size of one process (resident size when PSS is not readable)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
    except OSError:
        return 0


class TreeSampler(threading.Thread):
    """Samples the summed memory of a process and all its descendants until stopped."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_kib = 0
        self.enabled = os.path.isdir("/proc")
        self._done = threading.Event()

    def run(self) -> None:
        while self.enabled and not self._done.is_set():
            tree = _children_of()
            pids, todo = [], [self.pid]
            while todo:
                p = todo.pop()
                pids.append(p)
                todo.extend(tree.get(p, ()))
            self.peak_kib = max(self.peak_kib, sum(_memory_kib(p) for p in pids))
            self._done.wait(self.interval)

    def stop(self) -> None:
        self._done.set()
        self.join(5)


def run(cmd, logs: Path) -> dict:
    """Run ``cmd`` from the repository root; wall seconds, ru_maxrss and tree peak (MiB).

    Standard output and error go to files under ``logs`` (no pipes to drain)."""
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / "stdout", "wb") as out, open(logs / "stderr", "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen([str(c) for c in cmd], cwd=ROOT, stdout=out, stderr=err)
        sampler = TreeSampler(proc.pid)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        sampler.stop()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        text = (logs / "stderr").read_text("utf-8", "replace")
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(map(str, cmd))}\n"
                         f"{text[-3000:]}")
    return {"seconds": seconds, "maxrss_mib": usage.ru_maxrss / 1024,
            "tree_mib": sampler.peak_kib / 1024 if sampler.enabled else None,
            "stdout": (logs / "stdout").read_text("utf-8", "replace")}


def build_cmd(csv_path: Path, out: Path, db: Path, jobs: int) -> list:
    return [sys.executable, "-m", "letterpress.cli", "build", "-r", csv_path, "-t", "zh",
            "--batch", TITLE, "--org", ORG, "--package", PACKAGE, "--date", "2020-02-24",
            "--base-url", BASE_URL, "--db", f"sqlite:///{db}", "-o", out, "-q",
            "--jobs", str(jobs)]


def check_output(out: Path, n: int) -> str:
    """A quick look that the build made what it should (the tests check the content)."""
    with open(out / "manifest.csv", encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    problems = []
    if len(rows) != n or not all(r["code"] and r["url"] for r in rows):
        problems.append(f"manifest.csv has {len(rows)} rows (expected {n}, each with a code)")
    letters = sum(1 for _ in (out / "letters").iterdir())
    if letters != n:
        problems.append(f"{letters} letters (expected {n})")
    for name in ("letters.docx", "slips.pdf"):
        if not (out / name).is_file() or (out / name).stat().st_size == 0:
            problems.append(f"{name} is missing")
    sheets = sum(1 for _ in (out / "runsheets").iterdir())
    if problems:
        raise SystemExit("the build did not make what it should: " + "; ".join(problems))
    size = sum(p.stat().st_size for p in (out / "letters").iterdir())
    return (f"{n} letters ({size / 2**20:.0f} MiB), letters.docx "
            f"{(out / 'letters.docx').stat().st_size / 2**20:.0f} MiB, slips.pdf "
            f"{(out / 'slips.pdf').stat().st_size / 2**20:.0f} MiB, {sheets} run sheets")


# ---------------------------------------------------------------------------
# The obvious way (a child process; prints its own loop time as JSON)

def naive_worker(csv_path: str, out: str) -> None:
    import qrcode
    from docxtpl import DocxTemplate
    from jinja2 import Environment, StrictUndefined
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    from reportlab.pdfgen.canvas import Canvas

    from letterpress.ledger import codes
    from letterpress.slips import fonts

    out_dir = Path(out)
    (out_dir / "letters").mkdir(parents=True, exist_ok=True)
    choice = fonts.find_font(None)
    font = "Helvetica"
    if choice.path is not None:
        pdfmetrics.registerFont(TTFont("CJK", str(choice.path),
                                       subfontIndex=choice.subfont_index))
        font = "CJK"
    start = time.perf_counter()
    households = []
    for ctx in fictional.obvious_contexts(csv_path, batch=TITLE, org=ORG, package=PACKAGE):
        seq = ctx["seq"]
        code = codes.new_code()
        ctx.update(package=PACKAGE, code=codes.printed(code), url=codes.url_for(BASE_URL, code))
        tpl = DocxTemplate(str(TEMPLATE))
        tpl.render(ctx, jinja_env=Environment(autoescape=True, undefined=StrictUndefined))
        tpl.save(str(out_dir / "letters" / f"{seq:05d}-{ctx['name']}.docx"))
        households.append(ctx)
    letters_done = time.perf_counter()
    canvas = Canvas(str(out_dir / "slips.pdf"), pagesize=A4)
    width, height = A4[0] / 2, A4[1] / 4
    for i, h in enumerate(households):
        slot = i % 8
        x, y = (slot % 2) * width, A4[1] - (slot // 2 + 1) * height
        canvas.setFont(font, 9)
        canvas.drawString(x + 6 * mm, y + height - 8 * mm, f"{ORG}  {TITLE}")
        canvas.setFont(font, 12)
        canvas.drawString(x + 6 * mm, y + height - 16 * mm,
                          f"No. {h['seq']} / {h['total']}  {h['name']}{h['honorific']}")
        canvas.setFont(font, 9)
        canvas.drawString(x + 6 * mm, y + height - 23 * mm, h["address"])
        canvas.drawString(x + 6 * mm, y + height - 29 * mm, f"物资：{PACKAGE}  {h['notes']}")
        canvas.drawString(x + 6 * mm, y + height - 35 * mm, f"志愿者：{h['volunteer']}")
        canvas.drawString(x + 6 * mm, y + 6 * mm, "签收人：__________  时间：__________")
        image = qrcode.make(h["url"], error_correction=qrcode.constants.ERROR_CORRECT_M)
        canvas.drawImage(ImageReader(image.get_image()), x + width - 36 * mm, y + 10 * mm,
                         30 * mm, 30 * mm)
        canvas.drawString(x + width - 34 * mm, y + 6 * mm, h["code"])
        if slot == 7 or i == len(households) - 1:
            canvas.showPage()
    canvas.save()
    end = time.perf_counter()
    print(json.dumps({"n": len(households), "letters": letters_done - start,
                      "slips": end - letters_done}))


# ---------------------------------------------------------------------------
# Where the time goes: the build in this (child) process with a timer per stage

def stage_worker(csv_path: str, out: str, jobs: str) -> None:
    import resource

    from letterpress.cli import settings_from
    from letterpress.ledger import Ledger
    from letterpress.pipeline import build as batch
    from letterpress.pipeline import letters
    from letterpress.slips import slips

    spent: dict = {}

    def timed(owner, name: str, label: str) -> None:
        func = getattr(owner, name, None)
        if func is None:     # the library moved on: leave that stage out
            return

        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                spent[label] = spent.get(label, 0.0) + time.perf_counter() - start
        setattr(owner, name, wrapper)

    timed(batch, "check", "check (read list, template, fonts)")
    timed(Ledger, "open", "ledger (open, register, save)")
    timed(Ledger, "register_batch", "ledger (open, register, save)")
    timed(Ledger, "save_build_settings", "ledger (open, register, save)")
    timed(letters, "render_letters", "letters + letters.docx")
    timed(slips, "write_slips", "slips.pdf")
    timed(slips, "write_runsheet", "run sheets")
    timed(batch, "write_manifest", "manifest.csv")
    settings = settings_from(None, recipients=csv_path, template="zh", title=TITLE, org=ORG,
                             package=PACKAGE, date="2020-02-24", base_url=BASE_URL,
                             db=f"sqlite:///{Path(out) / 'ledger.db'}", out=str(Path(out) / "out"),
                             jobs=int(jobs), quiet=True)
    start = time.perf_counter()
    batch.build(settings, None)
    total = time.perf_counter() - start
    spent["other (between stages)"] = total - sum(spent.values())
    spent["total (build only)"] = total
    spent["peak MiB (this process)"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(spent, ensure_ascii=False))


# ---------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10000, help="households (default 10000)")
    parser.add_argument("--jobs", type=int, default=2, help="build --jobs (default 2)")
    parser.add_argument("--naive-n", type=int, default=100,
                        help="households the obvious way is timed on, scaled to N (default 100)")
    parser.add_argument("--stages", action="store_true",
                        help="also time each stage of the build (one more build)")
    parser.add_argument("--keep", action="store_true", help="keep the output folder")
    parser.add_argument("--naive-worker", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--stage-worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.naive_worker:
        naive_worker(*args.naive_worker)
        return 0
    if args.stage_worker:
        stage_worker(*args.stage_worker)
        return 0

    n, naive_n = args.n, max(1, min(args.naive_n, args.n))
    (ROOT / "output").mkdir(exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".bench-build-", dir=ROOT / "output"))
    try:
        big = fictional.write_csv(tmp / "list.csv", n)
        sample = fictional.write_csv(tmp / "sample.csv", naive_n)
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"letterpress build, {n} households, built-in Chinese letter, --jobs {args.jobs} "
              f"({os.cpu_count()} cores, load average {load:.1f} at start)")
        ours = run(build_cmd(big, tmp / "out", tmp / "ledger.db", args.jobs), tmp / "logs-ours")
        made = check_output(tmp / "out", n)
        tree = (f", whole process tree {ours['tree_mib']:.0f} MiB"
                if ours["tree_mib"] is not None else "")
        print(f"  ours:    {ours['seconds']:7.1f} s  "
              f"{ours['seconds'] / n * 1000:6.2f} ms/household  peak {ours['maxrss_mib']:.0f} MiB (largest process){tree}")
        print(f"           {made}")
        naive = run([sys.executable, Path(__file__).resolve(), "--naive-worker", sample,
                     tmp / "naive"], tmp / "logs-naive")
        timing = json.loads(naive["stdout"].strip().splitlines()[-1])
        per = (timing["letters"] + timing["slips"]) / naive_n
        print(f"  obvious: {per * n:7.1f} s  {per * 1000:6.2f} ms/household  (docxtpl "
              f"{timing['letters'] / naive_n * 1000:.2f} ms + qrcode.make/drawImage slip "
              f"{timing['slips'] / naive_n * 1000:.2f} ms; timed on {naive_n}, scaled to {n}; "
              "no run sheets, letters.docx or ledger)")
        print(f"  ratio:   {per * n / ours['seconds']:7.1f}x faster than the obvious loop")
        peak = max(ours["maxrss_mib"], ours["tree_mib"] or 0)
        met = ours["seconds"] < TARGET_SECONDS and peak < TARGET_MIB
        if n == 10000:
            print(f"  target:  under {TARGET_SECONDS:.0f} s and {TARGET_MIB:.0f} MiB at 10,000: "
                  f"{'met' if met else 'MISSED'}")
        if args.stages:
            staged = run([sys.executable, Path(__file__).resolve(), "--stage-worker", big,
                          tmp / "staged", args.jobs], tmp / "logs-stages")
            spent = json.loads(staged["stdout"].strip().splitlines()[-1])
            print("  stages (one more build, in one process with timers):")
            for label, value in spent.items():
                unit = "MiB" if "MiB" in label else "s"
                print(f"    {label:<34} {value:7.1f} {unit}")
    finally:
        if args.keep:
            print(f"  kept: {tmp}")
        else:
            import shutil
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
