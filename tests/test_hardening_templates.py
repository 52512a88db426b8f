"""Templates are data, not code: every template renders in a sandbox with bounded work.

A hostile template (or one copied from the internet) must never run a program, read a
file or exhaust the machine: ``check`` names the paragraph, ``letters``/``build`` stop
with the same message, and nothing runs (a marker file the payload would create never
appears).
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from clitools import run
from conftest import ROOT
from docx import Document

from letterpress.docx import sandbox
from letterpress.docx.template import CompiledTemplate
from letterpress.errors import TemplateProblemError

HEADER = ["序号", "姓名", "称呼", "小区", "楼栋", "单元", "房号", "志愿者"]


def recipients(tmp_path: Path, names=("王秀英", "张桂兰", "刘建华")) -> Path:
    path = tmp_path / "list.csv"
    rows = [",".join(HEADER)] + [f"{i},{n},奶奶,沙湖小区,{i}栋,1单元,{i}01,李明"
                                 for i, n in enumerate(names, 1)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8-sig")
    return path


def template(tmp_path: Path, *paragraphs: str, name="t.docx") -> Path:
    doc = Document()
    doc.add_paragraph("致居民的一封信")
    doc.add_paragraph("尊敬的{{ name }}{{ honorific }}:")
    for text in paragraphs:
        doc.add_paragraph(text)
    path = tmp_path / name
    doc.save(path)
    return path


def say(result) -> str:
    return result.output + result.stderr


#: Runs ``letterpress`` and prints its peak memory at exit: VmHWM, the high-water mark of this
#: process's own memory (getrusage's ru_maxrss would include the forking test process's, which
#: Linux carries across exec).
MEASURED = ("import atexit, re, resource, sys\n"
            "def peak():\n"
            "    try:\n"
            "        with open('/proc/self/status') as fh:\n"
            "            return int(re.search(r'VmHWM:\\s*(\\d+)', fh.read()).group(1))\n"
            "    except (OSError, AttributeError):\n"
            "        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "atexit.register(lambda: sys.stderr.write('PEAK-KIB %d\\n' % peak()))\n"
            "from letterpress.cli import main\n"
            "sys.argv = ['letterpress'] + sys.argv[1:]\nmain()")


def run_measured(*args, timeout=300):
    """Run ``letterpress ARGS`` in a new process: (exit status, output, peak memory in MiB)."""
    done = subprocess.run([sys.executable, "-c", MEASURED, *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)
    peak = re.search(r"PEAK-KIB (\d+)", done.stderr)
    assert peak, done.stderr
    return done.returncode, done.stdout + done.stderr, int(peak.group(1)) / 1024


def payload(marker: Path) -> list:
    touch = f"touch {marker}"
    return [
        f"{{{{ cycler.__init__.__globals__.os.popen('{touch}').read() }}}}",
        f"{{{{ joiner.__init__.__globals__['os'].system('{touch}') }}}}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ namespace|attr('__init__')|attr('__globals__') }}",
        "{{ name.__class__.__base__.__subclasses__() }}",
        f"{{{{ lipsum.__globals__['os'].popen('{touch}').read() }}}}",
        "{{ config.items() }}",
        "{{ self._TemplateReference__context }}",
    ]


# --------------------------------------------------------------------------------------------

def test_every_jinja_environment_is_made_by_the_sandbox_factory():
    made = []
    for path in (ROOT / "letterpress").rglob("*.py"):
        if path.name == "sandbox.py":
            continue
        text = path.read_text(encoding="utf-8")
        if re.search(r"\b(?:jinja2\.)?(?:Sandboxed|ImmutableSandboxed|Native)?Environment\(",
                     text) or "from jinja2 import Environment" in text:
            made.append(path.relative_to(ROOT))
    assert made == [], "Jinja environments made outside letterpress/docx/sandbox.py"
    tpl = CompiledTemplate(str(ROOT / "templates" / "letter-zh.docx"))
    assert isinstance(tpl._env, sandbox.Sandbox) and isinstance(tpl._prop_env, sandbox.Sandbox)


@pytest.mark.parametrize("index", range(8))
def test_check_reports_code_in_a_template_with_its_paragraph_and_nothing_runs(tmp_path, index):
    marker = tmp_path / "pwned"
    tag = payload(marker)[index]
    tpl = template(tmp_path, "我们一直牵挂着您。", tag)
    result = run("check", "-r", recipients(tmp_path), "-t", tpl, ok=False)
    assert result.exit_code == 1
    assert "paragraph 4" in say(result)
    assert "Internal error" not in say(result)
    assert re.search(r"Python's internals|no column or setting provides it", say(result))
    out = tmp_path / "out"
    result = run("letters", "-r", recipients(tmp_path), "-t", tpl, "-o", out, ok=False)
    assert result.exit_code == 1 and "paragraph 4" in say(result)
    assert not marker.exists()
    assert not (out / "letters").exists()


@pytest.mark.parametrize("index", [0, 1, 3, 5])
def test_rendering_refuses_the_payloads_even_without_check(tmp_path, index):
    """The sandbox itself, not only the check: the payload given as a value of the context
    is not reachable, and the tags fail at render time with the paragraph."""
    marker = tmp_path / "pwned"
    tag = payload(marker)[index].replace("lipsum", "cycler")
    tpl = CompiledTemplate(str(template(tmp_path, tag)))
    with pytest.raises(TemplateProblemError) as caught:
        tpl.render({"name": "王秀英", "honorific": "奶奶"})
    assert caught.value.code == "template_unsafe"
    assert "paragraph 3" in str(caught.value.where)
    assert not marker.exists()
    env = sandbox.environment()
    with pytest.raises(sandbox.SecurityError):   # what docxtpl's fallback gets as jinja_env
        env.from_string(tag).render()
    assert not marker.exists()


def test_a_huge_repeat_is_refused_before_it_is_made_and_memory_stays_small(tmp_path):
    tpl = template(tmp_path, "{{ 'x' * 10**9 }}")
    status, text, peak_mib = run_measured("check", "-r", recipients(tmp_path), "-t", tpl)
    assert status == 1, text
    assert "paragraph 3" in text and "1,000,000,000 characters" in text
    assert "Internal error" not in text
    assert peak_mib < 500     # 'x' * 10**9 alone would take a gigabyte; a check takes ~60-150 MiB


@pytest.mark.parametrize("tag, words", [
    ("{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
     "ran more than 250,000 times"),
    ("{{ range(10**7)|list|length }}", r"range\(\) asked for 10,000,000 numbers"),
    ("{% for i in range(10000) %}{{ 'y' * 5000 }}{% endfor %}", "grows past 20,971,520"),
    ("{{ '%0999999999d' % 1 }}", "width or precision"),
    ("{{ name|center(10**9) }}", "at most 100,000"),
    ("{% set ns = namespace(s='x') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}"
     "{% endfor %}{{ ns.s }}", "characters long"),
    # 2**60 macro calls: the call count or, on a busy machine, the time limit stops it
    ("{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(60) }}",
     "ran more than|took longer than"),
    # one long string many times in a list: small in memory, huge as text
    ("{% set big = 'x' * 10000000 %}{% set ns = namespace(l=[]) %}{% for i in range(100) %}"
     "{% set ns.l = ns.l + [big] %}{% endfor %}{{ ns.l }}", "list or table shown in the template"),
    ("{% set big = 'x' * 1000000 %}{% set ns = namespace(l=[]) %}{% for i in range(100) %}"
     "{% set ns.l = ns.l + [big] %}{% endfor %}{{ ('{}' * 100).format(*ns.l) }}",
     "100,000,200 characters"),
    ("{% set ns = namespace(l=[1]) %}{% for i in range(60) %}{% set ns.l = [ns.l, ns.l] %}"
     "{% endfor %}{{ ns.l }}", "more than 20,971,520 characters"),
])
def test_unbounded_work_ends_with_a_check_problem(tmp_path, tag, words):
    tpl = template(tmp_path, tag)
    result = run("check", "-r", recipients(tmp_path), "-t", tpl, ok=False)
    assert result.exit_code == 1, say(result)
    assert re.search(words, say(result)) and "paragraph 3" in say(result)
    assert "Internal error" not in say(result)


def test_work_that_only_one_household_triggers_stops_the_build_with_a_message(tmp_path):
    """The check tries the first letter; a later household's values can still start the
    work: the letters command stops with the place, and nothing is left under final names."""
    tag = ("{% if name == '刘建华' %}{% for i in range(10000) %}{% for j in range(10000) %}"
           "{{ i }}{% endfor %}{% endfor %}{% endif %}")
    tpl = template(tmp_path, tag)
    out = tmp_path / "out"
    status, text, peak_mib = run_measured("letters", "-r", recipients(tmp_path), "-t", tpl,
                                          "-o", out, "-q")
    assert status == 1, text
    assert "paragraph 3" in text and "more than" in text
    assert "Internal error" not in text
    assert not (out / "letters").exists() and not (out / "letters.docx").exists()
    assert peak_mib < 500     # bounded: the loop never holds its output


def test_a_letter_has_a_time_limit(tmp_path):
    slow = "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(60) }}"
    tpl = CompiledTemplate(str(template(tmp_path, slow)),
                           limits=sandbox.Limits(time_limit=0.2, max_iterations=10**9))
    with pytest.raises(TemplateProblemError) as caught:
        tpl.render({"name": "王秀英", "honorific": "奶奶"})
    assert caught.value.code == "template_limit"
    assert "longer than 0.2 seconds" in caught.value.message
    assert "paragraph 3" in str(caught.value.where)


def test_ordinary_templates_still_render(tmp_path):
    tags = ("{% for item in items %}{{ loop.index }}. {{ item|upper }}{% if not loop.last %}, "
            "{% endif %}{% endfor %} {{ '%05d' % seq }} {{ '{:>4}'.format(seq) }} "
            "{{ items|join('、') }} {{ (name ~ '!') * 2 }} {{ range(3)|sum }}")
    tpl = CompiledTemplate(str(template(tmp_path, tags)))
    letter = tpl.render({"name": "王秀英", "honorific": "奶奶", "items": ["肉", "菜"], "seq": 7})
    assert "1. 肉, 2. 菜 00007    7 肉、菜 王秀英!王秀英! 3" in letter.body


def test_docxtpl_renders_in_the_same_sandbox(tmp_path):
    """The docxtpl fallback passes ``sandbox.environment()`` as ``jinja_env``: the same refusals."""
    from docxtpl import DocxTemplate

    marker = tmp_path / "pwned"
    ok = DocxTemplate(str(template(tmp_path, "{{ items|join('、') }}", name="ok.docx")))
    ok.render({"name": "王秀英", "honorific": "奶奶", "items": ["肉", "菜"]},
              jinja_env=sandbox.environment(autoescape=True))
    ok.save(tmp_path / "out.docx")
    assert "肉、菜" in "\n".join(p.text for p in Document(tmp_path / "out.docx").paragraphs)
    bad = DocxTemplate(str(template(tmp_path, payload(marker)[0], name="bad.docx")))
    with pytest.raises(sandbox.SecurityError):
        bad.render({"name": "王秀英", "honorific": "奶奶"}, jinja_env=sandbox.environment())
    slow = DocxTemplate(str(template(tmp_path, "{{ 'x' * 10**9 }}", name="slow.docx")))
    with pytest.raises(sandbox.TemplateLimit):
        slow.render({"name": "王秀英", "honorific": "奶奶"}, jinja_env=sandbox.environment())
    assert not marker.exists()
