"""phonecast: push content and commands to fleets of SIP desk phones.

The protocol core lives in :mod:`phonecast.sip` and does no I/O; transports and
DNS live in :mod:`phonecast.net`; features (push, phone, campaign, content) build
on both; :mod:`phonecast.cli` only parses arguments and prints.

The core is compiled with mypyc when the package is built (setup.py);
``PHONECAST_PURE=1`` makes this process use the interpreted sources instead.
"""

import os as _os

if _os.environ.get("PHONECAST_PURE") == "1":
    from phonecast import _pure

    _pure.install()

__version__ = "0.1.0.dev0"
