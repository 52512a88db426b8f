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
    jobs_option,
    list_options,
    main,
    out_option,
    plural,
    quiet_option,
    settings_from,
    show_problems,
)
from letterpress.errors import ExitStatus


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
@batch_option
@click.option("--layout", type=click.Choice(LAYOUTS),
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

