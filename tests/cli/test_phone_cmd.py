"""``phonecast phone``: the screen drawn on the terminal."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from phonecast.ciscoxml import Text, to_xml
from phonecast.cli.phone_cmd import screen_printer
from phonecast.content import ContentServer
from phonecast.credentials import Secret
from phonecast.net.endpoint import SipEndpoint
from phonecast.phone.calls import CallAgent
from phonecast.phone.config import LineConfig, PhoneConfig
from phonecast.phone.screen import Screen, screen_for
from phonecast.phone.state import PhoneState
from phonecast.push.payload import url_payload
from phonecast.push.pusher import Destination, Pusher
from phonecast.sip import SipUri
from tests.ports import free_ports


def _page(title: str) -> bytes:
    return to_xml(Text(title, None, (), "Fire drill at 10:00"))


def _state(name: str) -> PhoneState:
    line = LineConfig("1001", Secret("s"), 5070)
    return PhoneState(PhoneConfig(name, "127.0.0.1", (line,)), CallAgent("<sip:1001@127.0.0.1>"))


def test_a_screen_is_drawn_again_only_when_its_rendering_changed() -> None:
    out = io.StringIO()
    show = screen_printer(Console(file=out, width=80, color_system=None))
    desk, hall = _state("desk"), _state("hall")
    for state, title in [
        (desk, "Drill"),
        (desk, "Drill"),  # the same page again: nothing drawn
        (hall, "Drill"),  # another phone's first screen
        (desk, "Later"),
        (desk, "Drill"),  # back to an earlier screen: a change
        (desk, "Drill"),
    ]:
        state.screen = screen_for(_page(title))
        show(state)
    headers = [line for line in out.getvalue().splitlines() if line.endswith(" shows:")]
    assert headers == ["desk shows:", "hall shows:", "desk shows:", "desk shows:"]
    assert out.getvalue().count("|Later") == 1


def test_a_pushed_page_is_drawn_as_written_never_read_as_markup() -> None:
    out = io.StringIO()
    show = screen_printer(Console(file=out, width=80, color_system=None))
    state = _state("desk")
    state.screen = Screen("CiscoIPPhoneText", "[/]", "[red]", "[bold]alarm[/bold] [link=x]")
    show(state)
    for written in ("|[/]", "|[red]", "|[bold]alarm[/bold] [link=x]"):
        assert written in out.getvalue()


async def test_the_phone_command_draws_a_page_pushed_twice_once(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    events = tmp_path / "events.jsonl"
    content = ContentServer()
    await content.start()
    drill, later = content.publish("p", _page("Drill")), content.publish("p", _page("Later"))
    args = ["phone", "--host", "127.0.0.1", "--name", "desk", "--line", f"1001:secret@{port}"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "phonecast", *args, "--duration", "30", "--events", str(events)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "COLUMNS": "80"},
    )
    ep = SipEndpoint()
    try:
        assert proc.stderr is not None
        first = await asyncio.to_thread(proc.stderr.readline)
        assert b"listening" in first, first
        await ep.listen_udp("127.0.0.1", 0)
        pusher = Pusher(ep)
        for url in (drill, drill, later):
            outcome = await pusher.push(
                SipUri("127.0.0.1", "1001", port=port),
                Secret("secret"),
                url_payload(url),
                destinations=[Destination("udp", "127.0.0.1", port)],
            )
            assert outcome.delivered
        for _ in range(100):  # until the phone has shown all three pages
            if events.exists() and events.read_text().count('"event":"screen"') == 3:
                break
            await asyncio.sleep(0.05)
    finally:
        await ep.close()
        proc.terminate()
        _, err = await asyncio.to_thread(proc.communicate, None, 10)
        await content.stop()
    logged = [json.loads(line) for line in events.read_text().splitlines()]
    assert [e["title"] for e in logged if e["event"] == "screen"] == ["Drill", "Drill", "Later"]
    drawn = err.decode()
    assert drawn.count("desk shows:") == 2, drawn
    assert drawn.count("|Drill") == 1 and drawn.count("|Later") == 1


class _GoneFile(io.StringIO):
    """A stderr that cannot be written (a closed pipe, a vanished tty)."""

    writes = 0

    def write(self, text: str) -> int:
        if not text:  # as a real stream: nothing to write, nothing fails
            return 0
        _GoneFile.writes += 1
        raise OSError(5, "Input/output error")


def test_a_console_that_cannot_be_written_stops_the_drawing_not_the_phone() -> None:
    show = screen_printer(Console(file=_GoneFile(), width=80, color_system=None))
    state = _state("desk")
    for title in ("Drill", "Later", "Again"):
        state.screen = screen_for(_page(title))
        show(state)  # must not raise into the phone
    assert _GoneFile.writes == 1  # drawing stopped after the first failure
