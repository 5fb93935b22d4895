"""A store file that cannot be used: one line naming it, exit 2, every command."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from phonecast.cli import cli


def test_every_command_says_what_is_wrong_with_the_store(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"\x00\xffnot sqlite" * 500)
    inventory = tmp_path / "phones.csv"
    inventory.write_text("name,target,user,password\na,sip:1001@127.0.0.1:9,,pw\n")
    commands = [
        ["campaign", "list"],
        ["campaign", "show", "X"],
        ["campaign", "report", "X"],
        ["campaign", "resume"],
        ["alert", "--inventory", str(inventory), "--text", "x", "--quiet"],
    ]
    for command in commands:
        run = CliRunner().invoke(cli, [*command, "--db", str(garbage)])
        assert run.exit_code == 2, (command, run.output)
        assert run.stderr == (
            f"phonecast: campaign store {garbage}: not an SQLite database"
            " (file is not a database)\n"
        ), command
