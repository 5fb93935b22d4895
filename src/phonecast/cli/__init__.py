"""The ``phonecast`` command: argument parsing and printing only.

Every subcommand turns its options into calls on the library and prints the
result; no protocol logic lives here.  Exit codes are shared by all commands:
0 success, 2 bad usage or input, 3 authentication rejected, 4 rejected by the
peer, 5 timed out or unreachable, 6 incomplete (some targets failed), 7
a campaign's store failed, 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import sys

import click

from phonecast import __version__
from phonecast.cli.campaign_cmd import alert
from phonecast.cli.campaign_group import campaign
from phonecast.cli.demo_cmd import demo
from phonecast.cli.phone_cmd import fleet, phone
from phonecast.cli.push_cmd import push
from phonecast.cli.sip_cmd import sip


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="phonecast")
def cli() -> None:
    """Push content and commands to fleets of SIP desk phones, and prove each
    phone got it."""


cli.add_command(sip)
cli.add_command(push)
cli.add_command(phone)
cli.add_command(fleet)
cli.add_command(alert)
cli.add_command(campaign)
cli.add_command(demo)


#: Exit status after Ctrl-C (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED = 130


def main() -> None:
    """Console-script entry point.

    Ctrl-C ends any command with one line and status 130 (click's own is
    "Aborted!" and 1, which README gives to other outcomes); a campaign's
    store stays consistent through it, and ``campaign resume`` finishes the
    run."""
    try:
        status = cli.main(prog_name="phonecast", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("phonecast: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    sys.exit(status if isinstance(status, int) else 0)
