"""QR symbols for a batch of URLs, module for module as ``qrcode`` makes them, in a tenth of the time.

``qrcode`` spends about 1 ms a symbol in pure-Python polynomial arithmetic
(Reed-Solomon codewords through its ``Polynomial`` class) and in placing the
data bits one by one, testing the mask function for each module. For 100,000
households that is most of the slips' time. Here:

- the data codewords are packed with integer arithmetic;
- the error correction codewords come from log/antilog tables (the same
  GF(256) arithmetic and generator polynomials as the QR standard);
- what is the same for every symbol of a version and mask (function patterns,
  format and version information, where each data bit goes and what the mask
  does there) is taken from ``qrcode`` itself once per (version, mask), so the
  placement cannot drift from it; a symbol then only flips the modules whose
  data bit is set.

``tests/test_qr.py`` compares every module with ``qrcode``'s for many payloads
of each mode and several versions.
"""
from __future__ import annotations

import functools
from typing import List, Sequence, Tuple

import qrcode
from qrcode import base as qr_base
from qrcode.util import MODE_8BIT_BYTE, MODE_ALPHA_NUM, PAD0, PAD1, length_in_bits

_ALPHA_VALUE = {ch: i for i, ch in enumerate("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")}

# GF(256) with the QR polynomial x^8 + x^4 + x^3 + x^2 + 1.
_EXP = [0] * 512
_LOG = [0] * 256
_value = 1
for _i in range(255):
    _EXP[_i] = _value
    _LOG[_value] = _i
    _value <<= 1
    if _value & 0x100:
        _value ^= 0x11D
for _i in range(255, 512):
    _EXP[_i] = _EXP[_i - 255]


@functools.lru_cache(maxsize=None)
def _generator_logs(degree: int) -> Tuple[int, ...]:
    """Logs of the generator polynomial's coefficients (highest degree first, leading 1 left out)."""
    poly = [1]
    for i in range(degree):
        nxt = [0] * (len(poly) + 1)
        for j, coef in enumerate(poly):
            nxt[j] ^= coef
            if coef:
                nxt[j + 1] ^= _EXP[_LOG[coef] + i]
        poly = nxt
    return tuple(_LOG[c] for c in poly[1:])


@functools.lru_cache(maxsize=None)
def _products(degree: int) -> Tuple[int, ...]:
    """For each byte value, the generator polynomial times it, its coefficients packed as
    one integer's bytes (so a division step is one shift and one exclusive or)."""
    gen = _generator_logs(degree)
    rows = [0] + [int.from_bytes(bytes(_EXP[g + _LOG[factor]] for g in gen), "big")
                  for factor in range(1, 256)]
    return tuple(rows)


def _remainder(data: Sequence[int], degree: int) -> List[int]:
    """The ``degree`` error correction codewords of one block (polynomial division)."""
    products = _products(degree)
    shift, mask = 8 * (degree - 1), (1 << 8 * degree) - 1
    rem = 0
    for byte in data:
        rem = ((rem << 8) & mask) ^ products[(rem >> shift) ^ byte]
    return list(rem.to_bytes(degree, "big"))


@functools.lru_cache(maxsize=None)
def _blocks(version: int, error_correction: int) -> Tuple[Tuple[int, int], ...]:
    return tuple((b.data_count, b.total_count - b.data_count)
                 for b in qr_base.rs_blocks(version, error_correction))


def codewords(data, mode: int, version: int, error_correction: int) -> List[int]:
    """Data and error correction codewords, interleaved as they are placed.

    ``data`` is a ``str`` in alphanumeric mode and ``bytes`` in byte mode."""
    bits, n = mode, 4
    length_bits = length_in_bits(mode, version)
    bits, n = (bits << length_bits) | len(data), n + length_bits
    if mode == MODE_ALPHA_NUM:
        values = [_ALPHA_VALUE[ch] for ch in data]
        for i in range(0, len(values) - 1, 2):
            bits, n = (bits << 11) | (values[i] * 45 + values[i + 1]), n + 11
        if len(values) % 2:
            bits, n = (bits << 6) | values[-1], n + 6
    elif mode == MODE_8BIT_BYTE:
        bits, n = (bits << 8 * len(data)) | int.from_bytes(data, "big"), n + 8 * len(data)
    else:
        raise ValueError(f"mode {mode} is not supported here")
    blocks = _blocks(version, error_correction)
    capacity = 8 * sum(dc for dc, _ in blocks)
    if n > capacity:
        raise ValueError(f"{n} bits do not fit in version {version} ({capacity})")
    pad = min(capacity - n, 4)                 # terminator
    bits, n = bits << pad, n + pad
    pad = -n % 8                               # to a whole byte
    bits, n = bits << pad, n + pad
    stream = list(bits.to_bytes(n // 8, "big")) if n else []
    fill = capacity // 8 - len(stream)
    stream += [PAD0 if i % 2 == 0 else PAD1 for i in range(fill)]
    data_blocks, ec_blocks, offset = [], [], 0
    for dc, ec in blocks:
        chunk = stream[offset:offset + dc]
        offset += dc
        data_blocks.append(chunk)
        ec_blocks.append(_remainder(chunk, ec))
    out: List[int] = []
    for group in (data_blocks, ec_blocks):
        for i in range(max(len(b) for b in group)):
            out.extend(b[i] for b in group if i < len(b))
    return out


class _Recorder(qrcode.QRCode):
    """``qrcode``'s own symbol with no data, noting where each data bit goes."""

    places: List[Tuple[int, int]]

    def map_data(self, data, mask_pattern):
        self.places, count = [], self.modules_count
        row, inc = count - 1, -1
        for col in range(count - 1, 0, -2):
            if col <= 6:
                col -= 1
            while True:
                for c in (col, col - 1):
                    if self.modules[row][c] is None:
                        self.places.append((row, c))
                row += inc
                if row < 0 or count <= row:
                    row -= inc
                    inc = -inc
                    break
        super().map_data(data, mask_pattern)


@functools.lru_cache(maxsize=16)
def _layout(version: int, error_correction: int, mask: int
            ) -> Tuple[Tuple[bytes, ...], Tuple[Tuple[int, int], ...]]:
    """(rows of the symbol with all data bits 0, place of each data bit in order)."""
    code = _Recorder(version=version, error_correction=error_correction, border=0,
                     mask_pattern=mask)
    code.data_cache = [0] * sum(dc + ec for dc, ec in _blocks(version, error_correction))
    code.makeImpl(False, mask)
    return tuple(bytes(row) for row in code.modules), tuple(code.places)


def matrix(data, mode: int, version: int, error_correction: int, mask: int) -> List[bytes]:
    """Rows of the symbol (1 = dark), as ``qrcode.QRCode(version, error_correction,
    border=0, mask_pattern=mask)`` makes them for ``QRData(data, mode)``."""
    blank, places = _layout(version, error_correction, mask)
    words = codewords(data, mode, version, error_correction)
    rows = [bytearray(r) for r in blank]
    at = 0
    for word in words:
        for bit in _SET_BITS[word]:
            r, c = places[at + bit]
            rows[r][c] ^= 1
        at += 8
    return [bytes(r) for r in rows]


#: For each byte, the places (0 = most significant) of its set bits.
_SET_BITS = tuple(tuple(b for b in range(8) if word & (0x80 >> b)) for word in range(256))
