"""The ``letterpress`` command. Click lives here and nowhere else.

Each command turns its options into :class:`letterpress.config.Settings`, calls
one library function and turns what comes back (or the error raised) into
messages and an exit status.
"""
from __future__ import annotations

import datetime as _dt
import functools
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Optional

import click

from letterpress import __version__
from letterpress.errors import CheckFailed, ExitStatus, LetterpressError, Problem

# ---------------------------------------------------------------------------
# Output helpers


def _echo_err(text: str = "", **style) -> None:
    click.echo(click.style(text, **style) if style else text, err=True)


def show_problems(problems, *, out_err: bool = True) -> None:
    """Errors first, then warnings, each with where and how to fix."""
    for p in sorted(problems, key=lambda p: (not p.is_error,)):
        label = click.style("error  ", fg="red", bold=True) if p.is_error else \
            click.style("warning", fg="yellow")
        where = str(p.where)
        click.echo(f"{label} {where + ': ' if where else ''}{p.message}", err=out_err)
        if p.hint:
            click.echo(f"        how to fix: {p.hint}", err=out_err)


class Progress:
    """A progress bar per stage on a terminal; silent when quiet or not a terminal."""

    def __init__(self, quiet: bool) -> None:
        self.enabled = not quiet and sys.stderr.isatty()
        self.bar = None
        self.stage = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled or total < 20:
            return
        if stage != self.stage:
            self.close()
            self.stage = stage
            self.bar = click.progressbar(length=total, label=f"{stage:<11}", file=sys.stderr,
                                         show_pos=True)
            self.bar.__enter__()
            self.done = 0
        self.bar.update(done - self.done)
        self.done = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


class LetterpressGroup(click.Group):
    """Turns library errors into messages and exit statuses: never a traceback for a mistake."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except CheckFailed as exc:
            show_problems(exc.problems)
            _echo_err(f"{exc.message} {exc.hint[0].upper() + exc.hint[1:]}.", fg="red")
            ctx.exit(int(ExitStatus.ERROR))
        except LetterpressError as exc:
            _echo_err(f"Error: {exc}", fg="red")
            ctx.exit(int(exc.exit_status))
        except KeyboardInterrupt:
            _echo_err("Interrupted. Files being written were not put in place; run the "
                      "command again to finish.", fg="red")
            ctx.exit(int(ExitStatus.INTERRUPTED))
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception:  # a bug, not a user mistake: keep the details out of the way
            log = Path("output") / "letterpress-error.log"
            try:
                log.parent.mkdir(parents=True, exist_ok=True)
                with open(log, "a", encoding="utf-8") as fh:
                    fh.write(f"--- {_dt.datetime.now().isoformat()} letterpress {__version__} "
                             f"{' '.join(sys.argv[1:])}\n{traceback.format_exc()}\n")
                where = f"; details were written to {log}"
            except OSError:
                where = ""
            _echo_err(f"Internal error: {sys.exc_info()[1]!r}{where}. This is a bug in "
                      "letterpress, not a mistake of yours; please report it with that file.",
                      fg="red")
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
                     help="Recipient list: .xlsx or .csv (UTF-8 or GBK)."),
        click.option("--template", "-t", help="Word template (.docx), or a built-in one: zh, en."),
        click.option("--batch", "title", help="Batch title, e.g. \"2020-02-24 Qingyuzui food packages\"."),
        click.option("--org", help="Sender (organisation) printed on letters and slips."),
        click.option("--date", help="Date of the round, YYYY-MM-DD (default today)."),
        click.option("--package", help="Package contents when the list has no package column, "
                                       "e.g. \"肉制品、蔬菜\"."),
        click.option("--lang", type=click.Choice(["zh", "en"]), help="Language of dates and labels."),
        click.option("--encoding", help="CSV encoding, when detection guesses wrong (e.g. gbk)."),
        click.option("--sheet", help="Worksheet of an .xlsx (default: the first)."),
        click.option("--config", "-c", type=click.Path(dir_okay=False),
                     help="letterpress.toml (default: ./letterpress.toml if present)."),
    ]
    for opt in reversed(opts):
        func = opt(func)
    return func


def build_options(func):
    opts = [
        click.option("--base-url", help="Address phones use to reach `letterpress serve` "
                                        "(default http://<this machine's LAN address>:8470)."),
        click.option("--layout", type=click.Choice(["a4-8", "a4-4", "label-100x150"]),
                     help="Slip layout (default a4-8)."),
        click.option("--font", type=click.Path(dir_okay=False),
                     help="CJK TrueType font for slips and run sheets."),
        click.option("--slip-fields", help="Extra fields printed on slips: category, phone."),
        click.option("--pdf", is_flag=True, default=None,
                     help="Also make letters.pdf and print/NN-volunteer.pdf (needs LibreOffice)."),
        click.option("--duplex", is_flag=True, default=None,
                     help="With --pdf: pad each letter to an even page count for two-sided "
                          "printing."),
        db_option,
    ]
    for opt in reversed(opts):
        func = opt(func)
    return func


db_option = click.option("--db", help="Ledger: a SQLAlchemy URL (default sqlite:///output/"
                                      "letterpress.db, or $LETTERPRESS_DB).")
out_option = click.option("--out", "-o", type=click.Path(file_okay=False),
                          help="Output folder (default output/<batch title>).")
jobs_option = click.option("--jobs", "-j", type=click.IntRange(1, 64),
                           help="Worker processes for rendering (default 1).")
quiet_option = click.option("--quiet", "-q", is_flag=True, help="No progress bar.")


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _summary_line(result) -> str:
    return (f"{plural(result.households, 'household')}, "
            f"{plural(result.volunteers, 'volunteer')}, "
            f"{plural(result.letters, 'letter')} -> {result.out}")


# ---------------------------------------------------------------------------
# Commands

@click.group(cls=LetterpressGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="letterpress")
def main():
    """letterpress: letters, QR delivery slips and a handover ledger for a delivery round.

    \b
    Typical round:
      letterpress check  -r recipients.xlsx -t zh     find every problem first
      letterpress build  -r recipients.xlsx -t zh     letters, slips, run sheets, ledger
      letterpress serve --lan                         volunteers scan slips at the door
      letterpress status                              who got their package
    """


@main.command()
@list_options
@click.option("--font", type=click.Path(dir_okay=False), help="Font to check slip text against.")
def check(config, **flags):
    """Check the list and the template; write nothing. Exit 1 if there are errors."""
    from letterpress.pipeline import build as batch

    settings = settings_from(config, **flags)
    checked = batch.check(settings, with_codes=True)
    show_problems(checked.problems, out_err=False)
    errors, warnings = len(checked.errors), len(checked.warnings)
    vols = batch.volunteers_of(checked.households)
    enc = f" ({checked.encoding})" if checked.encoding else ""
    click.echo(f"{checked.source}{enc}: {plural(len(checked.households), 'household')}, "
               f"{plural(len([v for v in vols if v]), 'volunteer')}; template "
               f"{checked.template_path.name}: {plural(errors, 'error')}, "
               f"{plural(warnings, 'warning')}")
    if errors:
        sys.exit(int(ExitStatus.ERROR))


@main.command()
@list_options
@out_option
@jobs_option
@quiet_option
def letters(config, quiet, **flags):
    """One .docx letter per household, letters.docx (all, one print job) and manifest.csv."""
    from letterpress.pipeline import build as batch

    settings = settings_from(config, quiet=quiet, **flags)
    progress = Progress(quiet)
    try:
        result = batch.letters(settings, progress)
    finally:
        progress.close()
    show_problems(result.warnings)
    click.echo(f"Letters: {_summary_line(result)}")


@main.command()
@list_options
@build_options
@out_option
@jobs_option
@quiet_option
def build(config, quiet, **flags):
    """The whole batch: letters, slips with QR codes, run sheets, manifest and ledger."""
    from letterpress.pipeline import build as batch

    settings = settings_from(config, quiet=quiet, **flags)
    _run_build(batch.build, settings, quiet)


def _run_build(func, settings, quiet):
    progress = Progress(quiet)
    try:
        result = func(settings, progress)
    finally:
        progress.close()
    show_problems(result.warnings)
    _echo_err(f"Ledger: {result.ledger}")
    click.echo(f"Built \"{result.title}\": {_summary_line(result)}")
    click.echo(f"  codes: {result.new} new, {result.kept} kept, {result.withdrawn} withdrawn; "
               f"phones open {result.base_url}/H/...")
    _pdf_outcome(result)
    return result


def _pdf_outcome(result) -> None:
    if (result.out / "print").is_dir() and any(p.name == "print" for p in result.files):
        click.echo(f"  print: letters.pdf and {result.out / 'print'} (one file per volunteer)")
    if result.pdf_error is not None:
        _echo_err(f"Error: {result.pdf_error}", fg="red")
        sys.exit(int(result.pdf_error.exit_status))


@main.command()
@click.option("--out", "-o", type=click.Path(file_okay=False), default="output/demo",
              show_default=True, help="Output folder.")
@click.option("--base-url", help="Address phones use to reach `letterpress serve`.")
@click.option("--pdf", is_flag=True, default=None,
              help="Also make letters.pdf and print/NN-volunteer.pdf (needs LibreOffice).")
@click.option("--duplex", is_flag=True, default=None, help="With --pdf: two-sided printing.")
@db_option
@jobs_option
@quiet_option
def demo(out, base_url, pdf, duplex, db, jobs, quiet):
    """Build the example round (40 fictional households, 8 volunteers) into output/demo."""
    from letterpress.pipeline import build as batch
    from letterpress.resources import examples_dir

    config = examples_dir() / "letterpress.toml"
    settings = settings_from(str(config), out=out, base_url=base_url, db=db, jobs=jobs,
                             quiet=quiet, pdf=pdf, duplex=duplex)
    _run_build(batch.build, settings, quiet)
    click.echo("Next: open letters.docx and slips.pdf in that folder, then run "
               "`letterpress serve --lan` so phones can confirm deliveries.")


@main.command()
@click.option("--batch", "title", help="Batch title (may be left out when the ledger holds one).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (documented in README).")
@db_option
def status(title, as_json, db):
    """Households per batch and volunteer, by state."""
    from letterpress.ledger import Ledger

    settings = settings_from(None, db=db)
    ledger = Ledger.open(settings.db, create=False)
    try:
        _echo_err(f"Ledger: {ledger.describe()}")
        data = ledger.status(title)
    finally:
        ledger.close()
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    for b in data["batches"]:
        click.echo(f"{b['title']} ({b['date']}): {b['households']} households: "
                   f"{b['delivered']} delivered, {b['failed']} failed, "
                   f"{b['outstanding']} outstanding, {b['withdrawn']} withdrawn")
        for v in b["volunteers"]:
            click.echo(f"  {v['name'] or 'unassigned':<12} {v['households']:>4} households  "
                       f"{v['delivered']:>4} delivered  {v['failed']:>4} failed  "
                       f"{v['outstanding']:>4} outstanding")


batch_option = click.option("--batch", "title",
                            help="Batch title (may be left out when the ledger holds one batch).")


@main.command()
@batch_option
@click.option("--layout", type=click.Choice(["a4-8", "a4-4", "label-100x150"]),
              help="Slip layout (default: the one the batch was built with).")
@click.option("--font", type=click.Path(dir_okay=False), help="CJK TrueType font.")
@click.option("--slip-fields", help="Extra fields printed on slips: category, phone.")
@out_option
@db_option
@quiet_option
def slips(title, layout, font, slip_fields, out, db, quiet):
    """Make the slips and run sheets of a batch already built (from the ledger)."""
    from letterpress.pipeline import rebuild

    settings = settings_from(None, layout=layout, font=font, slip_fields=slip_fields, out=out,
                             db=db, quiet=quiet)
    progress = Progress(quiet)
    try:
        result = rebuild.slips_again(settings, title, progress)
    finally:
        progress.close()
    _echo_err(f"Ledger: {result.ledger}")
    click.echo(f"Slips for \"{result.title}\": {result.households} households, "
               f"{result.volunteers} run sheets -> {result.out}")


def _show_confirmations(described, results) -> None:
    _echo_err(f"Ledger: {described}")
    counts = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
        line = f"line {r.line}: " if r.line else ""
        if r.status == "rejected":
            click.echo(click.style("rejected ", fg="red") + f"{line}{r.text}: {r.message}")
        elif r.status == "already_delivered":
            click.echo(click.style("duplicate", fg="yellow") + f" {line}{r.code} No.{r.seq} "
                       f"{r.name}: already delivered; recorded and flagged for review")
        elif r.status == "repeated":
            click.echo(f"repeated  {line}{r.code or r.text}: already recorded, nothing new")
        else:
            click.echo(click.style("recorded ", fg="green") + f"{line}{r.code} No.{r.seq} {r.name}")
    click.echo(f"{counts.get('created', 0)} new, {counts.get('repeated', 0)} repeated, "
               f"{counts.get('already_delivered', 0)} duplicate, "
               f"{counts.get('rejected', 0)} rejected")
    if counts.get("rejected"):
        sys.exit(int(ExitStatus.ERROR))


OUTCOME_CHOICE = click.Choice(["delivered", "not-home", "refused", "proxy", "hospital", "other"])


@main.command()
@click.argument("codes", nargs=-1)
@click.option("--from", "from_file", type=click.Path(dir_okay=False),
              help="A scanner app's export (CSV or text): one URL or code a line.")
@click.option("--outcome", type=OUTCOME_CHOICE, default="delivered", show_default=True)
@click.option("--by", "by", help="Volunteer who made the delivery (required for typed codes).")
@click.option("--at", "at", help="When, e.g. \"2020-02-24 10:32\" (default now).")
@click.option("--note", default="", help="Note (required for proxy and other).")
@db_option
def confirm(codes, from_file, outcome, by, at, note, db):
    """Record deliveries from typed codes, signed paper slips or a scanner export.

    \b
    letterpress confirm K7Q2M-9XD3T-H 4ZMVZ-T1KCC-M --by 李明
    letterpress confirm --from scans.csv
    """
    from letterpress.ledger import operations as staff

    settings = settings_from(None, db=db)
    if from_file and codes:
        raise click.UsageError("give codes or --from FILE, not both")
    if from_file:
        described, results = staff.confirm_from(settings.db, Path(from_file), outcome, by, note)
    else:
        if not codes:
            raise click.UsageError("give one or more codes, or --from FILE")
        if not by:
            raise click.UsageError("say who delivered with --by VOLUNTEER")
        when = staff.parse_time(at) if at else None
        described, results = staff.confirm(settings.db, codes, outcome, by, when, note)
    _show_confirmations(described, results)


@main.command()
@batch_option
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]), default=None,
              help="Default: from the file name's ending, else csv.")
@click.option("--output", "-o", "output", type=click.Path(dir_okay=False), required=True,
              help="File to write.")
@db_option
def report(title, fmt, output, db):
    """One row per household: state, last outcome, when, by whom, note."""
    from letterpress.ledger import operations as staff

    settings = settings_from(None, db=db)
    fmt = fmt or ("xlsx" if output.lower().endswith(".xlsx") else "csv")
    described, count = staff.report(settings.db, title, fmt, Path(output))
    _echo_err(f"Ledger: {described}")
    click.echo(f"Report: {count} households -> {output}")


@main.command()
@batch_option
@click.option("--outstanding", is_flag=True,
              help="Every household not yet delivered (outstanding or failed).")
@click.option("--household", "keys", multiple=True, help="A household id (repeatable).")
@db_option
@quiet_option
def reprint(title, outstanding, keys, db, quiet):
    """New codes and slips for households not yet delivered; the old codes stop working."""
    from letterpress.pipeline import rebuild

    if not outstanding and not keys:
        raise click.UsageError("say which households: --outstanding, or --household ID")
    settings = settings_from(None, db=db, quiet=quiet)
    progress = Progress(quiet)
    try:
        result = rebuild.reprint(settings, title, outstanding=outstanding, keys=keys,
                               progress=progress)
    finally:
        progress.close()
    _echo_err(f"Ledger: {result.ledger}")
    if not result.count:
        click.echo(f"Nothing to reprint in \"{result.title}\": every household is delivered.")
        return
    made = "slips and letters" if result.letters_made else "slips"
    click.echo(f"Reprinted {result.count} households of \"{result.title}\": new codes, old ones "
               f"revoked. Print the {made} in {result.folder}; {result.out} is up to date.")


@main.command()
@db_option
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1: this "
                                           "computer only).")
@click.option("--port", type=click.IntRange(1, 65535), default=8470, show_default=True)
@click.option("--lan", is_flag=True, help="Listen on this computer's LAN address, the one "
                                          "`build` prints into the codes, so phones can connect.")
@click.option("--behind-proxy", is_flag=True,
              help="Trust X-Forwarded-For/-Proto from a reverse proxy (nginx, Caddy).")
@click.option("--threads", type=click.IntRange(1, 64), default=8, show_default=True)
def serve(db, host, port, lan, behind_proxy, threads):
    """Serve the pages volunteers' phones open when they scan a slip, and the staff dashboard."""
    from letterpress import network
    from letterpress.slips import qr
    from letterpress.server import close_app, create_app, ledger_of, staff_link
    from letterpress.server.run import serve as run_server

    settings = settings_from(None, db=db)
    if lan and host:
        raise click.UsageError("give --lan or --host, not both")
    if lan:
        host = network.lan_address()
        if host is None:
            raise click.UsageError("this computer has no LAN address: connect it to the "
                                   "volunteers' Wi-Fi, or use --host")
    host = host or "127.0.0.1"
    app = create_app(settings.db, behind_proxy=behind_proxy)
    try:
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        base = f"http://{shown}:{port}"
        click.echo(f"Ledger: {ledger_of(app).describe()}")
        click.echo(f"Serving on {base}/ (Ctrl-C to stop)")
        if lan:
            click.echo("Phones on the same network open this address (scan it):")
            click.echo(qr.terminal(base.upper()))
        elif network.is_loopback_url(base):
            click.echo("Only this computer can open these pages; add --lan so phones can.")
        for b in ledger_of(app).batches():
            if b.base_url and b.base_url.lower().rstrip("/") != base.lower():
                _echo_err(click.style("warning", fg="yellow") + f" the slips of \"{b.title}\" "
                          f"point at {b.base_url}, not at {base}: phones scanning them will not "
                          "reach this server. Serve at that address, or build again with "
                          f"--base-url {base}")
        click.echo(f"Staff dashboard (one-time link, 12 hours): {staff_link(app, base)}")
        run_server(app, host, port, threads=threads)
    finally:
        close_app(app)


@main.command()
@batch_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@db_option
def purge(title, yes, db):
    """Remove a finished batch's personal data from the ledger and its output folder.

    Names, addresses, phones, categories and notes go; the counts by state,
    volunteer and compound stay, so the round can still be reported.
    """
    from letterpress.ledger import operations as staff

    settings = settings_from(None, db=db)
    plan = staff.purge_plan(settings.db, title)
    _echo_err(f"Ledger: {plan.ledger}")
    click.echo(f"Batch \"{plan.title}\": {plan.households} households.")
    click.echo("This removes their names, addresses, phones, categories and notes from the "
               "ledger (counts and states stay), revokes every code and badge,")
    if plan.paths:
        click.echo(f"and deletes {len(plan.paths)} file(s) and folder(s) in {plan.folder}: "
                   + ", ".join(p.name for p in plan.paths[:6]) + (" …" if len(plan.paths) > 6
                                                                 else "") + ".")
    else:
        click.echo("(no output files of this batch were found to delete).")
    if not yes and not click.confirm("It cannot be undone. Purge?", default=False):
        click.echo("Nothing was changed.")
        sys.exit(int(ExitStatus.ERROR))
    count = staff.purge(settings.db, plan)
    click.echo(f"Purged \"{plan.title}\": {count} households kept as counts only.")


@main.command()
@batch_option
@click.option("--duplex", is_flag=True, default=None,
              help="Pad each letter to an even page count for two-sided printing.")
@jobs_option
@db_option
@quiet_option
def pdf(title, duplex, jobs, db, quiet):
    """Print-ready PDFs of a batch already built: letters.pdf and print/NN-volunteer.pdf."""
    from letterpress.pipeline import rebuild

    settings = settings_from(None, duplex=duplex, jobs=jobs, db=db, quiet=quiet)
    progress = Progress(quiet)
    try:
        result = rebuild.pdf_again(settings, title, progress)
    finally:
        progress.close()
    _echo_err(f"Ledger: {result.ledger}")
    click.echo(f"PDFs for \"{result.title}\": {plural(result.letters, 'letter')} converted "
               f"-> {result.out / 'letters.pdf'}")
    _pdf_outcome(result)


if __name__ == "__main__":  # pragma: no cover
    main()
