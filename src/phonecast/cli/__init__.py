"""The ``phonecast`` command: argument parsing and printing only.

Every subcommand turns its options into calls on the library and prints the
result; no protocol logic lives here.  Exit codes are shared by all commands:
0 success, 2 bad usage or input, 3 authentication rejected, 4 rejected by the
peer, 5 timed out or unreachable, 6 incomplete (some targets failed).
"""

from __future__ import annotations

import click

from phonecast import __version__
from phonecast.cli.campaign_cmd import alert, campaign
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


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="phonecast")
