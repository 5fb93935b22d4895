"""Value types whose ``__init__`` is written out instead of generated: the
core's, and the few the pusher and the emulator make once per push.

They are frozen dataclasses with ``init=False`` and a hand-written
``__init__`` (which mypyc compiles; the generated one stays interpreted and
costs ~15x more per value).  These checks keep each ``__init__`` in step with
its fields, and hold on the compiled build as on the sources: every field
is a parameter of the same name, kind and default, and the value stays
frozen, comparable and hashable.
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
from typing import Any

import pytest

from phonecast._pure import is_compiled
from phonecast.phone.httpget import FetchResult
from phonecast.push.pusher import Attempt, Outcome, _Result
from phonecast.sip.digest import Challenge, Credentials, Reason, Verdict
from phonecast.sip.errors import SipError
from phonecast.sip.headers import CSeq, NameAddr, Via
from phonecast.sip.transaction import RequestReceived, ResponseReceived
from phonecast.sip.uri import SipUri
from phonecast.sip.wire import parse_message

_REQUEST = parse_message(
    b"OPTIONS sip:a@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
    b"From: <sip:b@h>;tag=1\r\nTo: <sip:a@h>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n"
)

SAMPLES: list[Any] = [
    Via("UDP", "h", 5060, (("branch", "z9hG4bK1"),), "SIP/2.0"),
    NameAddr(SipUri("h", "a"), "A", (("tag", "1"),)),
    CSeq(7, "NOTIFY"),
    Challenge(realm="r", nonce="n", qop=("auth",), algorithm="MD5", opaque="o", stale=True),
    Credentials(
        username="u",
        realm="r",
        nonce="n",
        uri="sip:h",
        response="0" * 32,
        algorithm="MD5",
        cnonce="c",
        qop="auth",
        nc="00000001",
        opaque="o",
    ),
    Verdict(True, Reason.OK, False, "u", 1),
    RequestReceived(_REQUEST),  # type: ignore[arg-type]
    # The features' values made once per push, written out the same way.
    Attempt("udp:127.0.0.1:5060", 200, "final", 1.5),
    Outcome("delivered", 200, "OK", "udp:h:5060", (), 2, True, 3.0, "d"),
    _Result("final", 200, "OK", "delivered", 2, True, "d"),
    FetchResult("http://h/x", True, 200, "text/xml", b"<a/>", None),
]


@pytest.mark.parametrize("value", SAMPLES, ids=lambda v: type(v).__name__)
def test_every_field_is_an_init_parameter_with_its_default(value: Any) -> None:
    cls = type(value)
    if not isinstance(value, RequestReceived):  # a Request is not hashable
        assert hash(
            cls(**{f.name: getattr(value, f.name) for f in dataclasses.fields(cls)})
        ) == hash(value)
    fields = [f for f in dataclasses.fields(cls) if f.init]
    # Rebuilding from every field by name gives the same value...
    assert cls(**{f.name: getattr(value, f.name) for f in fields}) == value
    # ...replacing one field keeps the rest...
    for f in fields:
        other = dataclasses.replace(value, **{f.name: getattr(value, f.name)})
        assert other == value
    # ...and leaving a defaulted field out gives the field's default (unless
    # the type's own checks refuse the value without it: then the signature
    # test below, on the sources, is what checks that default).
    given = {f.name: getattr(value, f.name) for f in fields}
    for f in fields:
        if _no_default(f):
            continue
        try:
            bare = cls(**{k: v for k, v in given.items() if k != f.name})
        except SipError:
            continue
        assert getattr(bare, f.name) == f.default, f.name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, fields[0].name, getattr(value, fields[0].name))


@pytest.mark.parametrize("value", SAMPLES, ids=lambda v: type(v).__name__)
def test_init_signature_matches_the_fields_on_the_sources(value: Any) -> None:
    """Names, order, kinds and defaults (the interpreted __init__ has a
    signature to read; the compiled one is checked by the test above)."""
    cls = type(value)
    if is_compiled(sys.modules[cls.__module__]):
        assert not inspect.isfunction(cls.__init__)  # compiled: no signature to read
        return
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    fields = [f for f in dataclasses.fields(cls) if f.init]
    assert [p.name for p in params] == [f.name for f in fields]
    for p, f in zip(params, fields, strict=True):
        kind = (
            inspect.Parameter.KEYWORD_ONLY if f.kw_only else inspect.Parameter.POSITIONAL_OR_KEYWORD
        )
        assert p.kind == kind, f.name
        assert p.default == (inspect.Parameter.empty if _no_default(f) else f.default), f.name


def test_response_received_and_checks_still_run() -> None:
    response = parse_message(b"SIP/2.0 200 OK\r\nCSeq: 1 OPTIONS\r\n\r\n")
    assert ResponseReceived(response).response is response  # type: ignore[arg-type]
    with pytest.raises(Exception, match="CR or LF"):
        Challenge(realm="a\r\nb", nonce="n", params=(("x", "y"),))
    with pytest.raises(Exception, match="lack"):
        Credentials(username="u")


def _no_default(f: dataclasses.Field[Any]) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
