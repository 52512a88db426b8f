"""Household codes: format, check symbol, forgiving reading, URLs."""
from __future__ import annotations

import random
import re

import pytest
import qrcode
from qrcode.constants import ERROR_CORRECT_M
from qrcode.util import MODE_8BIT_BYTE, MODE_ALPHA_NUM

from letterpress.errors import LetterpressError
from letterpress.ledger import codes
from letterpress.ledger.codes import ALPHABET, CodeError
from letterpress.slips import qr

PRINTED = re.compile(rf"^[{ALPHABET}]{{5}}-[{ALPHABET}]{{5}}-[{ALPHABET}]$")
BASE_30 = "https://hui.qingyuzui-sq.cn:8470"[:30]


def make(data: str) -> str:
    """A valid canonical code from 10 data symbols."""
    return data + codes.check_symbol(data)


def sample_codes(n: int = 60) -> list:
    rnd = random.Random(24)
    out = [make("0Z0Z0Z0Z0Z"), make("Z0Z0Z0Z0Z0"), make("0000000000"), make("ZZZZZZZZZZ"),
           make("0123456789"), make("ABCDEFGHJK")]
    out += [make("".join(rnd.choice(ALPHABET) for _ in range(10))) for _ in range(n)]
    return out


def test_alphabet_is_crockford_without_i_l_o_u():
    assert ALPHABET == "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    assert len(set(ALPHABET)) == 32
    assert not set("ILOU*~$=") & set(ALPHABET)


def test_new_code_is_printed_in_groups_and_valid():
    seen = set()
    for _ in range(300):
        code = codes.new_code()
        assert PRINTED.match(code), code
        assert codes.normalise(code) == code.replace("-", "")
        assert codes.printed(code) == code
        seen.add(code)
    assert len(seen) == 300


def test_every_single_substitution_is_caught():
    for canonical in sample_codes():
        assert codes.normalise(canonical) == canonical
        for pos in range(codes.LENGTH):
            for symbol in ALPHABET:
                if symbol == canonical[pos]:
                    continue
                typo = canonical[:pos] + symbol + canonical[pos + 1:]
                with pytest.raises(CodeError) as info:
                    codes.normalise(typo)
                assert info.value.code == "code_check", typo


def test_every_adjacent_swap_is_caught_including_0_and_z():
    swaps = 0
    for canonical in sample_codes():
        for pos in range(codes.LENGTH - 1):
            a, b = canonical[pos], canonical[pos + 1]
            if a == b:
                continue
            swapped = canonical[:pos] + b + a + canonical[pos + 2:]
            with pytest.raises(CodeError):
                codes.normalise(swapped)
            swaps += 1
    assert swaps > 500


def test_reading_is_forgiving_about_case_dashes_and_lookalikes():
    canonical = make("1010100000")
    assert codes.normalise(canonical.lower()) == canonical
    typed = canonical.replace("1", "I", 2).replace("1", "l").replace("0", "o")
    assert codes.normalise(typed) == canonical
    spaced = " ".join([canonical[:3], canonical[3:7], canonical[7:]])
    assert codes.normalise(spaced) == canonical
    assert codes.normalise(codes.printed(canonical).lower()) == canonical


@pytest.mark.parametrize("text, code", [
    ("", "code_empty"),
    ("K7Q2M-9XD3T", "code_length"),
    ("K7Q2M-9XD3T-HH", "code_length"),
    ("K7Q2M-9XD3U-H", "code_symbol"),
    ("K7Q2M-9XD3*-H", "code_symbol"),
])
def test_bad_codes_say_why(text, code):
    with pytest.raises(ValueError) as info:
        codes.normalise(text)
    assert isinstance(info.value, LetterpressError)
    assert info.value.code == code
    assert str(info.value)
    assert not codes.is_valid(text)


def test_url_is_upper_case_and_compact():
    code = codes.new_code()
    url = codes.url_for("http://192.168.1.20:8470/", code)
    assert url == "HTTP://192.168.1.20:8470/H/" + code.replace("-", "")
    assert url == url.upper()
    assert qr.mode_for(url) == MODE_ALPHA_NUM


def test_code_from_url_or_text_accepts_urls_paths_and_bare_codes():
    code = codes.new_code()
    canonical = code.replace("-", "")
    for text in (codes.url_for("http://10.0.0.5:8470", code),
                 f"https://example.org/letterpress/h/{canonical.lower()}",
                 f"http://x/H/{code}?utm=1", f"/H/{canonical}/", code, canonical.lower(),
                 f"  {code}  "):
        assert codes.code_from_url_or_text(text) == canonical, text
    with pytest.raises(CodeError):
        codes.code_from_url_or_text("http://example.org/V/abc")
    with pytest.raises(CodeError):
        codes.code_from_url_or_text(f"http://x/H/{canonical[:-1]}")


def test_badge_url_keeps_the_token_case():
    assert codes.badge_url("http://a:8470/", "aB-_9z") == "http://a:8470/V/aB-_9z"


def test_a_30_character_base_url_fits_version_3_at_level_m_in_alphanumeric_mode():
    assert len(BASE_30) == 30
    url = codes.url_for(BASE_30, codes.new_code())
    assert len(url) == 44
    assert qr.mode_for(url) == MODE_ALPHA_NUM
    assert qr.version_for(len(url), MODE_ALPHA_NUM) == 3
    assert len(qr.matrix(url)) == 3 * 4 + 17
    # qrcode's own search agrees, and lower case (byte mode) would not fit version 3.
    searched = qrcode.QRCode(error_correction=ERROR_CORRECT_M)
    searched.add_data(url)
    searched.make(fit=True)
    assert searched.version == 3
    assert qr.version_for(len(url), MODE_8BIT_BYTE) > 3


def test_new_codes_are_valid_distinct_and_use_every_symbol_everywhere():
    made = [codes.new_canonical() for _ in range(4000)]
    assert len(set(made)) == len(made)
    assert all(codes.normalise(c) == c for c in made)
    for position in range(codes.DATA_LENGTH):
        assert {c[position] for c in made} == set(codes.ALPHABET)
    printed = codes.new_code()
    assert printed == codes.printed(printed) and len(printed) == 13
