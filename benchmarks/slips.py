"""Slips: ours against the obvious way, side by side in one run.

    python benchmarks/slips.py [N] [--layout a4-8] [--repeat 3]

Ours: a QR matrix with a fixed version and mask pattern, drawn as merged
vector rectangles in one path. The obvious way: ``qrcode.make(url)`` (best-fit
version, all eight masks tried) rendered to a PIL image and placed with
``canvas.drawImage``. Everything else (layout, text, fonts) is the same code.
Households are fictional and generated here, so this runs from a fresh
checkout with only the runtime dependencies. Runs alternate and the best of
``--repeat`` runs counts, so a busy machine disturbs the ratio less.
"""
from __future__ import annotations

import argparse
import contextlib
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import qrcode  # noqa: E402
from fictional import COMPOUNDS, GIVEN, NOTES, SURNAMES, VOLUNTEERS  # noqa: E402
from qrcode.constants import ERROR_CORRECT_M  # noqa: E402
from reportlab.lib.utils import ImageReader  # noqa: E402

from letterpress.choices import DEFAULT_LAYOUT, LAYOUTS  # noqa: E402
from letterpress.ledger import codes  # noqa: E402
from letterpress.models import BatchInfo, Household, Recipient  # noqa: E402
from letterpress.slips import (
    fonts,  # noqa: E402
    qr,  # noqa: E402
    slips,  # noqa: E402
)


def fictional_households(n: int, base_url: str, seed: int = 2020) -> list:
    """``n`` made-up households with codes and URLs (no real person)."""
    rnd = random.Random(seed)
    out = []
    for seq in range(1, n + 1):
        name = rnd.choice(SURNAMES) + rnd.choice(GIVEN)
        compound = rnd.choice(COMPOUNDS)
        address = (f"{compound}{rnd.randint(1, 12)}栋{rnd.randint(1, 4)}单元"
                   f"{rnd.randint(1, 9)}0{rnd.randint(1, 4)}")
        recipient = Recipient(
            row=seq + 1, id=str(seq), name=name, honorific=rnd.choice(("奶奶", "爷爷")),
            address=address, compound=compound,
            phone=f"1{rnd.randint(3, 8)}{rnd.randint(10**8, 10**9 - 1)}",
            category="独居老人", volunteer=VOLUNTEERS[(seq - 1) * len(VOLUNTEERS) // n],
            notes=rnd.choice(NOTES))
        code = codes.new_code()
        out.append(Household(seq=seq, recipient=recipient, code=code,
                             url=codes.url_for(base_url, code)))
    return out


class ObviousQR:
    """Stands in for :mod:`letterpress.slips.qr` in slips: a PIL image per code, placed as an image."""

    @staticmethod
    def matrix(payload: str) -> str:
        return payload

    @staticmethod
    def draw(canvas, x: float, y: float, size: float, payload: str) -> None:
        image = qrcode.make(payload, error_correction=ERROR_CORRECT_M, border=4)
        canvas.drawImage(ImageReader(image.get_image()), x, y, size, size)


@contextlib.contextmanager
def obvious_qr():
    saved = slips.qr
    slips.qr = ObviousQR
    try:
        yield
    finally:
        slips.qr = saved


def run(households, out: Path, layout: str, choice, info) -> float:
    start = time.perf_counter()
    slips.write_slips(households, out, info=info, total=len(households), layout=layout,
                      fonts=choice, package="肉制品、蔬菜")
    return time.perf_counter() - start


def matrix_ms(urls) -> tuple:
    """ms per QR matrix: ``qrcode``'s defaults (best fit, mask search) vs fixed version and mask."""
    start = time.perf_counter()
    for url in urls:
        code = qrcode.QRCode(error_correction=ERROR_CORRECT_M)
        code.add_data(url)
        code.make(fit=True)
        code.get_matrix()
    searched = time.perf_counter() - start
    start = time.perf_counter()
    for url in urls:
        qr.matrix(url)
    fixed = time.perf_counter() - start
    return searched * 1000 / len(urls), fixed * 1000 / len(urls)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=400, help="households (default 400)")
    parser.add_argument("--layout", default=DEFAULT_LAYOUT, choices=LAYOUTS)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--base-url", default="http://192.168.1.20:8470")
    args = parser.parse_args(argv)

    choice = fonts.find_font(None)
    fonts.register(choice)
    households = fictional_households(args.n, args.base_url)
    info = BatchInfo(title="2020-02-24 青鱼嘴社区 慰问物资", org="青鱼嘴社区志愿服务队")
    ours, obvious = [], []
    with tempfile.TemporaryDirectory() as tmp:
        # Warm up both (font loading, first-use caches) on a few slips.
        run(households[:8], Path(tmp) / "warm.pdf", args.layout, choice, info)
        with obvious_qr():
            run(households[:8], Path(tmp) / "warm2.pdf", args.layout, choice, info)
        for _ in range(max(1, args.repeat)):
            ours.append(run(households, Path(tmp) / "ours.pdf", args.layout, choice, info))
            with obvious_qr():
                obvious.append(run(households, Path(tmp) / "obvious.pdf", args.layout, choice,
                                   info))
        size_ours = (Path(tmp) / "ours.pdf").stat().st_size
        size_obvious = (Path(tmp) / "obvious.pdf").stat().st_size
    searched, fixed = matrix_ms([h.url for h in households[:200]])
    best_ours, best_obvious = min(ours) * 1000 / args.n, min(obvious) * 1000 / args.n
    print(f"{args.n} slips, layout {args.layout}, font {choice.name}, best of {args.repeat}")
    print(f"  ours     {best_ours:6.2f} ms/slip   {size_ours / 1024:8.0f} KiB")
    print(f"  obvious  {best_obvious:6.2f} ms/slip   {size_obvious / 1024:8.0f} KiB"
          "   (qrcode.make + drawImage)")
    print(f"  ratio    {best_obvious / best_ours:6.1f}x faster")
    print(f"  QR matrix: {searched:.2f} ms with best fit and mask search, "
          f"{fixed:.2f} ms with fixed version and mask")
    return 0


if __name__ == "__main__":
    sys.exit(main())
