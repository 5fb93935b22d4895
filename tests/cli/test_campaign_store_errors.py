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


def test_an_unwritable_report_path_is_said_before_anything_is_sent(tmp_path: Path) -> None:
    """It once failed with a traceback after the whole campaign had run."""
    inventory = tmp_path / "phones.csv"
    inventory.write_text("name,target,user,password\na,sip:1001@127.0.0.1:9,,pw\n")
    db = tmp_path / "c.db"
    for report, why in ((tmp_path / "no" / "r.json", "its directory does not exist"),
                        (inventory / "r.json", "its directory does not exist")):  # fmt: skip
        run = CliRunner().invoke(
            cli,
            ["alert", "--inventory", str(inventory), "--text", "x", "--quiet",
             "--db", str(db), "--report", str(report)],
        )  # fmt: skip
        assert run.exit_code == 2, run.output
        assert run.stderr == f"phonecast: cannot write the report {report}: {why}\n"
        assert not db.exists()  # no campaign made, nothing sent
