"""The TLS of one accepted connection, run over memory buffers.

Why not the event loop's TLS (``create_server(ssl=...)``): the loop hands
an accepted connection to its protocol only once the handshake is over, so
until then no cap can count it, and a peer could hold as many files as it
opens connections, for as long as the handshake timeout, by never finishing
a handshake.  Calling ``start_tls`` on an accepted plain connection does not
mend that on uvloop, which reads the ClientHello into the plain protocol
first.  So a listener accepts plain TCP (counted against the cap at once, its
handshake given the message timeout like any message), and the connection
runs TLS itself through this class: ciphertext in, plaintext out and the
reverse, with ``ssl.SSLObject`` doing all of TLS (no sockets here, no clock).

Used for the server side only: a connection we dial holds its place under
the cap from before it connects, so the loop's TLS serves it.
"""

from __future__ import annotations

import contextlib
import ssl
from typing import Final

#: A TLS record's header: type (1), version (2), length (2).
_HEADER: Final = 5


class TlsSession:
    """One server-side TLS session over memory BIOs."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        #: True once the handshake has completed.
        self.handshaken = False
        #: True once the peer has closed its side (close_notify).
        self.peer_closed = False
        #: True once the handshake failed or a record was bad: the alert that
        #: says why is in :meth:`to_send`, and nothing more is read.
        self.failed = False
        #: Plaintext written before the handshake completed, sent after it,
        #: and its size (which the connection bounds, as it bounds unsent data).
        self._early: list[bytes] = []
        self.early_size = 0
        #: Where the peer's ciphertext is in its record framing: octets of a
        #: header seen, octets of a record's body still owed.
        self._header = b""
        self._owed = 0
        self._first_record = True

    @property
    def mid_record(self) -> bool:
        """True while part of a record has arrived and the rest has not: a
        peer trickling a record is stalling a message, as one trickling
        plaintext would (OpenSSL buffers it without a word)."""
        return self._owed > 0 or len(self._header) > 0

    def _track(self, data: bytes) -> None:
        """Follow the record framing over ``data`` (headers may be split)."""
        at, end = 0, len(data)
        while at < end:
            if self._owed:
                taken = min(self._owed, end - at)
                self._owed -= taken
                at += taken
                continue
            part = data[at : at + _HEADER - len(self._header)]
            at += len(part)
            header = self._header + part
            if len(header) < _HEADER:
                self._header = header
                break
            self._header = b""
            if self._first_record and header[0] & 0x80 and header[2] == 1:
                # An SSLv2-format ClientHello (TLS 1.2 E.2, which OpenSSL still
                # takes): a 2-octet header, its length in 15 bits, and the
                # body's first 3 octets already read as ours.
                self._owed = (((header[0] & 0x7F) << 8) | header[1]) - 3
            else:
                self._owed = int.from_bytes(header[3:5], "big")
            self._first_record = False

    def receive(self, data: bytes) -> bytes:
        """Take ciphertext from the peer; return the plaintext it completes.

        When the handshake fails or a record is bad, ``failed`` is set and
        the plaintext of the records before it is still returned; the alert
        to tell the peer is then in :meth:`to_send`."""
        if self.failed or self.peer_closed:
            return b""
        self._track(data)
        self._incoming.write(data)
        tls = self._tls
        if not self.handshaken:
            try:
                tls.do_handshake()
            except ssl.SSLWantReadError:
                return b""
            except ssl.SSLError:
                self.failed = True
                return b""
            self.handshaken = True
            early, self._early, self.early_size = self._early, [], 0
            for chunk in early:
                tls.write(chunk)
        chunks: list[bytes] = []
        while True:
            try:
                chunk = tls.read(65536)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                self.peer_closed = True
                break
            except ssl.SSLError:
                self.failed = True
                break
            if not chunk:  # what the ssl module reads at the peer's close_notify
                self.peer_closed = True
                break
            chunks.append(chunk)
        if len(chunks) == 1:
            return chunks[0]
        return b"".join(chunks)

    def send(self, data: bytes) -> None:
        """Encrypt ``data`` for the peer (see :meth:`to_send`); before the
        handshake is done, hold it (``early_size``) until it is.  Raises
        ``ssl.SSLError`` if the session cannot take it."""
        if self.handshaken:
            self._tls.write(data)
        else:
            self._early.append(data)
            self.early_size += len(data)

    def shutdown(self) -> None:
        """Say close_notify to the peer (see :meth:`to_send`), without
        waiting for the peer's own."""
        if not self.handshaken or self.failed:
            return
        # The peer's close_notify is not awaited: unwrap says it wants to read.
        with contextlib.suppress(ssl.SSLError, ValueError):
            self._tls.unwrap()

    def to_send(self) -> bytes:
        """The ciphertext waiting for the peer (handshake, records, alerts)."""
        return self._outgoing.read()
