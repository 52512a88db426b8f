"""Commands that make a batch's files: check, letters, build, demo, slips, pdf."""
from __future__ import annotations

import sys

import click

from letterpress.choices import LAYOUTS
from letterpress.cli.common import (
    Progress,
    _echo_err,
    _summary_line,
    batch_option,
    build_options,
    db_option,
    households,
    jobs_option,
    letters,
    list_options,
    main,
    out_option,
    quiet_option,
    settings_from,
    show_problems,
    volunteers,
)
from letterpress.errors import ExitStatus
from letterpress.i18n import N_, _, ngettext


@main.command(help=N_("Check the list and the template; write nothing. Exit 1 if there are "
                       "errors."))
@list_options
@click.option("--font", type=click.Path(dir_okay=False),
              help=N_("Font to check slip text against."))
def check(config, **flags):
    from letterpress.pipeline import build as batch

    settings = settings_from(config, **flags)
    checked = batch.check(settings, with_codes=True)
    show_problems(checked.problems, out_err=False)
    errors, warnings = len(checked.errors), len(checked.warnings)
    vols = batch.volunteers_of(checked.households)
    source = f"{checked.source} ({checked.encoding})" if checked.encoding else checked.source
    click.echo(_("%(source)s: %(households)s, %(volunteers)s; template %(template)s: "
                 "%(errors)s, %(warnings)s",
                 source=source, households=households(len(checked.households)),
                 volunteers=volunteers(len([v for v in vols if v])),
                 template=checked.template_path.name,
                 errors=ngettext("%(num)d error", "%(num)d errors", errors),
                 warnings=ngettext("%(num)d warning", "%(num)d warnings", warnings)))
    if errors:
        sys.exit(int(ExitStatus.ERROR))


@main.command("letters", help=N_("One .docx letter per household, letters.docx (all, one print "
                                  "job) and manifest.csv."))
@list_options
@out_option
@jobs_option
@quiet_option
def letters_command(config, quiet, **flags):
    from letterpress.pipeline import build as batch

    settings = settings_from(config, quiet=quiet, **flags)
    progress = Progress(quiet)
    try:
        result = batch.letters(settings, progress)
    finally:
        progress.close()
    show_problems(result.warnings)
    click.echo(_("Letters: %(summary)s", summary=_summary_line(result)))


@main.command(help=N_("The whole batch: letters, slips with QR codes, run sheets, manifest and "
                       "ledger."))
@list_options
@build_options
@out_option
@jobs_option
@quiet_option
def build(config, quiet, **flags):
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
    _echo_err(_("Ledger: %(ledger)s", ledger=result.ledger))
    click.echo(_("Built \"%(title)s\": %(summary)s", title=result.title,
                 summary=_summary_line(result)))
    click.echo(_("  codes: %(new)s new, %(kept)s kept, %(withdrawn)s withdrawn; phones open "
                 "%(url)s/H/...", new=result.new, kept=result.kept, withdrawn=result.withdrawn,
                 url=result.base_url))
    _pdf_outcome(result)
    return result


def _pdf_outcome(result) -> None:
    if (result.out / "print").is_dir() and any(p.name == "print" for p in result.files):
        click.echo(_("  print: letters.pdf and %(folder)s (one file per volunteer)",
                     folder=result.out / "print"))
    if result.pdf_error is not None:
        _echo_err(_("Error: %(error)s", error=result.pdf_error), fg="red")
        sys.exit(int(result.pdf_error.exit_status))


@main.command(help=N_("Build the example round (40 fictional households, 8 volunteers) into "
                       "output/demo."))
@click.option("--out", "-o", type=click.Path(file_okay=False), default="output/demo",
              show_default=True, help=N_("Output folder."))
@click.option("--base-url", help=N_("Address phones use to reach `letterpress serve`."))
@click.option("--pdf", is_flag=True, default=None,
              help=N_("Also make letters.pdf and print/NN-volunteer.pdf (needs LibreOffice)."))
@click.option("--duplex", is_flag=True, default=None,
              help=N_("With --pdf: two-sided printing."))
@db_option
@jobs_option
@quiet_option
def demo(out, base_url, pdf, duplex, db, jobs, quiet):
    from letterpress.pipeline import build as batch
    from letterpress.resources import examples_dir

    config = examples_dir() / "letterpress.toml"
    settings = settings_from(str(config), out=out, base_url=base_url, db=db, jobs=jobs,
                             quiet=quiet, pdf=pdf, duplex=duplex)
    _run_build(batch.build, settings, quiet)
    click.echo(_("Next: open letters.docx and slips.pdf in that folder, then run "
                 "`letterpress serve --lan` so phones can confirm deliveries."))



@main.command(help=N_("Make the slips and run sheets of a batch already built (from the "
                       "ledger)."))
@batch_option
@click.option("--layout", type=click.Choice(LAYOUTS),
              help=N_("Slip layout (default: the one the batch was built with)."))
@click.option("--font", type=click.Path(dir_okay=False), help=N_("CJK TrueType font."))
@click.option("--slip-fields", help=N_("Extra fields printed on slips: category, phone."))
@out_option
@db_option
@quiet_option
def slips(title, layout, font, slip_fields, out, db, quiet):
    from letterpress.pipeline import rebuild

    settings = settings_from(None, layout=layout, font=font, slip_fields=slip_fields, out=out,
                             db=db, quiet=quiet)
    progress = Progress(quiet)
    try:
        result = rebuild.slips_again(settings, title, progress)
    finally:
        progress.close()
    _echo_err(_("Ledger: %(ledger)s", ledger=result.ledger))
    click.echo(_("Slips for \"%(title)s\": %(households)s, %(sheets)s -> %(out)s",
                 title=result.title, households=households(result.households),
                 sheets=ngettext("%(num)d run sheet", "%(num)d run sheets", result.volunteers),
                 out=result.out))




@main.command(help=N_("Print-ready PDFs of a batch already built: letters.pdf and "
                       "print/NN-volunteer.pdf."))
@batch_option
@click.option("--duplex", is_flag=True, default=None,
              help=N_("Pad each letter to an even page count for two-sided printing."))
@jobs_option
@db_option
@quiet_option
def pdf(title, duplex, jobs, db, quiet):
    from letterpress.pipeline import rebuild

    settings = settings_from(None, duplex=duplex, jobs=jobs, db=db, quiet=quiet)
    progress = Progress(quiet)
    try:
        result = rebuild.pdf_again(settings, title, progress)
    finally:
        progress.close()
    _echo_err(_("Ledger: %(ledger)s", ledger=result.ledger))
    click.echo(_("PDFs for \"%(title)s\": %(letters)s converted -> %(file)s", title=result.title,
                 letters=letters(result.letters), file=result.out / "letters.pdf"))
    _pdf_outcome(result)

