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
        #: Plaintext written before the handshake completed, sent after it.
        self._early: list[bytes] = []

    def receive(self, data: bytes) -> bytes:
        """Take ciphertext from the peer; return the plaintext it completes.

        Raises ``ssl.SSLError`` when the handshake fails or a record is
        bad; the alert to tell the peer is then in :meth:`to_send`."""
        self._incoming.write(data)
        tls = self._tls
        if not self.handshaken:
            try:
                tls.do_handshake()
            except ssl.SSLWantReadError:
                return b""
            self.handshaken = True
            early, self._early = self._early, []
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
            if not chunk:  # what the ssl module reads at the peer's close_notify
                self.peer_closed = True
                break
            chunks.append(chunk)
        if len(chunks) == 1:
            return chunks[0]
        return b"".join(chunks)

    def send(self, data: bytes) -> None:
        """Encrypt ``data`` for the peer (see :meth:`to_send`)."""
        if self.handshaken:
            self._tls.write(data)
        else:
            self._early.append(data)

    def shutdown(self) -> None:
        """Say close_notify to the peer (see :meth:`to_send`), without
        waiting for the peer's own."""
        if not self.handshaken:
            return
        # The peer's close_notify is not awaited: unwrap says it wants to read.
        with contextlib.suppress(ssl.SSLError, ValueError):
            self._tls.unwrap()

    def to_send(self) -> bytes:
        """The ciphertext waiting for the peer (handshake, records, alerts)."""
        return self._outgoing.read()
