"""The runtime state of emulated phones and their lines.

Kept apart from :mod:`phonecast.phone.emulator` (which dispatches what
the network sends) and :mod:`phonecast.phone.pushes` (which acts on
accepted XML-Service pushes): both read and change it.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Final

from phonecast.net.timers import Timer
from phonecast.phone.calls import CallAgent
from phonecast.phone.config import LineConfig, PhoneConfig
from phonecast.phone.screen import Screen
from phonecast.sip.digest import DigestServer

__all__ = ["ACTIONS_KEPT", "MAX_DEFERRED", "LineState", "PhoneState"]


@dataclass
class LineState:
    """Runtime state of one line of one phone."""

    phone: PhoneState
    config: LineConfig
    ha1: str = field(repr=False)
    #: The authority of the phone's own settings (realm, algorithm, nonce
    #: lifetime), which ``ha1`` was computed for.
    digest: DigestServer
    bind: bytes = b""


#: The latest internal URIs a phone ran, kept for tests and tools (a phone
#: pushed to for days must not grow a list for ever).
ACTIONS_KEPT: Final = 256
#: Priority-1 URLs a busy phone keeps for when it is idle again; past this,
#: a push is dropped (and says so), as anything a peer can make us hold.
MAX_DEFERRED: Final = 32


@dataclass
class PhoneState:
    """Runtime state of one phone: screen, calls, deferred pushes."""

    config: PhoneConfig
    calls: CallAgent
    screen: Screen = field(default_factory=Screen)
    #: Priority-1 pushes waiting for the phone to be idle: (URL, the line it
    #: came in on, the fetched Executes that led to it).
    deferred: collections.deque[tuple[str, str, int]] = field(default_factory=collections.deque)
    #: True while a deferred URL is being fetched: the rest wait for it (the
    #: phone runs them one at a time, whoever noticed it was idle).
    running_deferred: bool = False
    #: The hang-up of the call a Dial: (or a transfer) placed: one per phone,
    #: moved later by each new one.
    hang_up: Timer | None = None
    fetches: int = 0
    actions: collections.deque[str] = field(
        default_factory=lambda: collections.deque(maxlen=ACTIONS_KEPT)
    )
