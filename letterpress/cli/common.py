"""What every command shares: the group that turns errors into messages, options, progress.

Click lives in this package and nowhere else.
"""
from __future__ import annotations

import datetime as _dt
import os
import sys
import traceback
from pathlib import Path
from typing import Any, Optional

import click

from letterpress import __version__, i18n
from letterpress.choices import LANGS, LAYOUTS
from letterpress.cli.clicktext import translate_click, translate_help
from letterpress.errors import CheckFailed, ExitStatus, LetterpressError, mask_secrets
from letterpress.files import is_no_space, no_space_error, open_private, private_dir
from letterpress.i18n import N_, _, ngettext

# ---------------------------------------------------------------------------
# Output helpers


def _echo_err(text: str = "", **style) -> None:
    text = mask_secrets(text)
    click.echo(click.style(text, **style) if style else text, err=True)


def show_problems(problems, *, out_err: bool = True) -> None:
    """Errors first, then warnings, each with where and how to fix."""
    error, warning = _("error"), _("warning")
    width = max(click.unstyle(error).__len__(), len(warning))
    for p in sorted(problems, key=lambda p: (not p.is_error,)):
        label = click.style(error.ljust(width), fg="red", bold=True) if p.is_error else \
            click.style(warning.ljust(width), fg="yellow")
        where = str(p.where)
        text = _("%(where)s: %(message)s", where=where, message=p.message) if where \
            else p.message
        click.echo(mask_secrets(f"{label} {text}"), err=out_err)
        if p.hint:
            click.echo(" " * (width + 1) + _("how to fix: %(hint)s", hint=p.hint), err=out_err)


class Progress:
    """A progress bar per stage on a terminal; silent when quiet or not a terminal."""

    def __init__(self, quiet: bool) -> None:
        self.enabled = not quiet and sys.stderr.isatty()
        self.bar: Optional[Any] = None        # a click progress bar while a stage runs
        self.stage: Optional[str] = None
        self.done = 0

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled or total < 20:
            return
        if stage != self.stage:
            self.close()
            self.stage = stage
            label = i18n.stage_label(stage)
            pad = 11 - len(label) - sum(1 for ch in label if ord(ch) > 0x2e80)
            self.bar = bar = click.progressbar(length=total, label=label + " " * max(pad, 0),
                                               file=sys.stderr, show_pos=True)
            bar.__enter__()
            self.done = 0
        assert self.bar is not None
        self.bar.update(done - self.done)
        self.done = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


class LetterpressGroup(click.Group):
    """Turns library errors into messages and exit statuses: never a traceback for a mistake."""

    def main(self, *args, **kwargs):
        """Speak the environment's language (``LETTERPRESS_LANG``, else the locale) throughout."""
        token = i18n.set_lang(i18n.lang_from_env())
        translate_click()
        translate_help(self)
        try:
            return super().main(*args, **kwargs)
        finally:
            i18n.reset_lang(token)

    def invoke(self, ctx):
        # What letterpress writes holds personal data: owner-only, also what LibreOffice,
        # SQLite or openpyxl create for it (the library sets modes itself as well).
        umask = os.umask(0o077)
        try:
            return self._invoke(ctx)
        finally:
            os.umask(umask)

    def _invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except CheckFailed as exc:
            show_problems(exc.problems)
            _echo_err(_("%(message)s Fix the rows and template places listed above, then run "
                        "the command again.", message=exc.message), fg="red")
            ctx.exit(int(ExitStatus.ERROR))
        except LetterpressError as exc:
            _echo_err(mask_secrets(_("Error: %(error)s", error=exc)), fg="red")
            ctx.exit(int(exc.exit_status))
        except KeyboardInterrupt:
            _echo_err(_("Interrupted. Files being written were not put in place; run the "
                        "command again to finish."), fg="red")
            ctx.exit(int(ExitStatus.INTERRUPTED))
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:  # a bug, not a user mistake: keep the details out of the way
            if is_no_space(exc):   # a full disk in a command that does not say where itself
                folder = os.path.dirname(exc.filename) if exc.filename else os.getcwd()
                _echo_err(_("Error: %(error)s", error=no_space_error(folder)), fg="red")
                ctx.exit(int(ExitStatus.ERROR))
            log = Path("output") / "letterpress-error.log"
            try:
                private_dir(log.parent)
                with open_private(log, "a", encoding="utf-8") as fh:   # owner-only
                    fh.write(mask_secrets(
                        f"--- {_dt.datetime.now().isoformat()} letterpress {__version__} "
                        f"{' '.join(sys.argv[1:])}\n{traceback.format_exc()}\n"))
                _echo_err(mask_secrets(_(
                    "Internal error: %(error)s; details were written to %(log)s. This is a bug "
                    "in letterpress, not a mistake of yours; please report it with that file.",
                    error=repr(sys.exc_info()[1]), log=log)), fg="red")
            except OSError:
                _echo_err(mask_secrets(_(
                    "Internal error: %(error)s. This is a bug in letterpress, not a mistake of "
                    "yours; please report it.", error=repr(sys.exc_info()[1]))), fg="red")
            ctx.exit(int(ExitStatus.ERROR))


def settings_from(config: Optional[str], **flags):
    from letterpress import config as config_mod

    if "date" in flags and flags["date"] is not None:
        flags["date"] = config_mod.parse_date(flags["date"])
    return config_mod.load(Path(config) if config else None, **flags)


# ---------------------------------------------------------------------------
# Shared options

def list_options(func):
    """Options that say which list, template and batch a command works on."""
    opts = [
        click.option("--recipients", "-r", type=click.Path(dir_okay=False),
                     help=N_("Recipient list: .xlsx or .csv (UTF-8 or GBK).")),
        click.option("--template", "-t",
                     help=N_("Word template (.docx), or a built-in one: zh, en, zh-large, "
                             "en-large (large print).")),
        click.option("--batch", "title",
                     help=N_("Batch title, e.g. \"2020-02-24 Qingyuzui food packages\".")),
        click.option("--org", help=N_("Sender (organisation) printed on letters and slips.")),
        click.option("--date", help=N_("Date of the round, YYYY-MM-DD (default today).")),
        click.option("--package", help=N_("Package contents when the list has no package "
                                          "column, e.g. \"肉制品、蔬菜\".")),
        click.option("--lang", type=click.Choice(LANGS),
                     help=N_("Language of dates and labels.")),
        click.option("--encoding",
                     help=N_("CSV encoding, when detection guesses wrong (e.g. gbk).")),
        click.option("--sheet", help=N_("Worksheet of an .xlsx (default: the first).")),
        click.option("--config", "-c", type=click.Path(dir_okay=False),
                     help=N_("letterpress.toml (default: ./letterpress.toml if present).")),
    ]
    for opt in reversed(opts):
        func = opt(func)
    return func


def build_options(func):
    opts = [
        click.option("--base-url", help=N_("Address phones use to reach `letterpress serve` "
                                           "(default http://<this machine's LAN address>:8470).")),
        click.option("--layout", type=click.Choice(LAYOUTS),
                     help=N_("Slip layout (default a4-8).")),
        click.option("--font", type=click.Path(dir_okay=False),
                     help=N_("CJK TrueType font for slips and run sheets.")),
        click.option("--slip-fields",
                     help=N_("Extra fields printed on slips: category, phone.")),
        click.option("--pdf", is_flag=True, default=None,
                     help=N_("Also make letters.pdf and print/NN-volunteer.pdf (needs "
                             "LibreOffice).")),
        click.option("--duplex", is_flag=True, default=None,
                     help=N_("With --pdf: pad each letter to an even page count for two-sided "
                             "printing.")),
        db_option,
    ]
    for opt in reversed(opts):
        func = opt(func)
    return func


db_option = click.option("--db", help=N_("Ledger: a SQLAlchemy URL (default sqlite:///output/"
                                         "letterpress.db, or $LETTERPRESS_DB)."))
out_option = click.option("--out", "-o", type=click.Path(file_okay=False),
                          help=N_("Output folder (default output/<batch title>)."))
jobs_option = click.option("--jobs", "-j", type=click.IntRange(1, 64),
                           help=N_("Worker processes for rendering (default 1)."))
quiet_option = click.option("--quiet", "-q", is_flag=True, help=N_("No progress bar."))


def households(n: int) -> str:
    return ngettext("%(num)d household", "%(num)d households", n)


def volunteers(n: int) -> str:
    return ngettext("%(num)d volunteer", "%(num)d volunteers", n)


def letters(n: int) -> str:
    return ngettext("%(num)d letter", "%(num)d letters", n)


def _summary_line(result) -> str:
    return _("%(households)s, %(volunteers)s, %(letters)s -> %(out)s",
             households=households(result.households), volunteers=volunteers(result.volunteers),
             letters=letters(result.letters), out=result.out)


# ---------------------------------------------------------------------------
# Commands

@click.group(cls=LetterpressGroup, context_settings={"help_option_names": ["-h", "--help"]},
             help=N_("""letterpress: letters, QR delivery slips and a handover ledger for a delivery
round.

\b
Typical round:
  letterpress check  -r recipients.xlsx -t zh     find every problem first
  letterpress build  -r recipients.xlsx -t zh     letters, slips, run sheets, ledger
  letterpress serve --lan                         volunteers scan slips at the door
  letterpress status                              who got their package
"""))
@click.version_option(__version__, prog_name="letterpress")
def main():
    pass


batch_option = click.option("--batch", "title",
                            help=N_("Batch title (may be left out when the ledger holds one "
                                    "batch)."))
