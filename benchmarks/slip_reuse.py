"""Slips written again with 1 % of the households changed: fresh against reusing pages.

    python benchmarks/slip_reuse.py [N] [--changed 0.01] [--layout a4-8]

Three writes of ``slips.pdf`` for N fictional households (default 20,000): without a
page cache (as ``reprint`` writes), the first build with one (every page drawn and
kept), and the build after changing the address or notes of ``--changed`` of the
households (only their pages drawn, the others put back). Prints seconds, pages
drawn and the ratio of fresh to reused.
"""
from __future__ import annotations

import argparse
import dataclasses
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from slips import fictional_households  # noqa: E402

from letterpress.choices import DEFAULT_LAYOUT, LAYOUTS  # noqa: E402
from letterpress.models import BatchInfo  # noqa: E402
from letterpress.slips import fonts, slips  # noqa: E402
from letterpress.slips.pagecache import PageCache  # noqa: E402


def timed(households, out: Path, layout: str, choice, info, cache=None) -> float:
    start = time.perf_counter()
    slips.write_slips(households, out, info=info, total=len(households), layout=layout,
                      fonts=choice, package="肉制品、蔬菜", cache=cache)
    return time.perf_counter() - start


def changed(households, share: float, seed: int = 7) -> list:
    """``households`` with the address or notes of ``share`` of them changed."""
    rnd = random.Random(seed)
    out = list(households)
    for index in rnd.sample(range(len(out)), max(1, round(len(out) * share))):
        r = out[index].recipient
        r = (dataclasses.replace(r, address=r.address + "（新址）") if rnd.random() < 0.5
             else dataclasses.replace(r, notes="改为下午送"))
        out[index] = dataclasses.replace(out[index], recipient=r)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=20_000,
                        help="households (default 20,000)")
    parser.add_argument("--changed", type=float, default=0.01, help="share changed (0.01)")
    parser.add_argument("--layout", default=DEFAULT_LAYOUT, choices=LAYOUTS)
    parser.add_argument("--base-url", default="http://192.168.1.20:8470")
    args = parser.parse_args(argv)

    choice = fonts.find_font(None)
    fonts.register(choice)
    households = fictional_households(args.n, args.base_url)
    again = changed(households, args.changed)
    info = BatchInfo(title="2020-02-24 青鱼嘴社区 慰问物资", org="青鱼嘴社区志愿服务队")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        timed(households[:16], out / "warm.pdf", args.layout, choice, info)
        plain = timed(households, out / "plain.pdf", args.layout, choice, info)
        first_cache = PageCache(out / ".letterpress")
        first = timed(households, out / "slips.pdf", args.layout, choice, info, first_cache)
        cache = PageCache(out / ".letterpress")
        reused = timed(again, out / "slips.pdf", args.layout, choice, info, cache)
        size = (out / "slips.pdf").stat().st_size
        kept = (out / ".letterpress" / "slips.cache").stat().st_size
    print(f"{args.n} slips, layout {args.layout}, {args.changed:.0%} changed, "
          f"font {choice.name}; slips.pdf {size / 2**20:.1f} MiB, cache {kept / 2**20:.1f} MiB")
    print(f"  no cache        {plain:7.2f} s")
    print(f"  first build     {first:7.2f} s   {first_cache.drawn} pages drawn and kept")
    print(f"  rebuild         {reused:7.2f} s   {cache.drawn} pages drawn, "
          f"{cache.reused} put back")
    print(f"  ratio           {plain / reused:7.1f}x faster than writing fresh")
    return 0


if __name__ == "__main__":
    sys.exit(main())
