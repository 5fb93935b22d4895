"""phonecast: push content and commands to fleets of SIP desk phones.

The protocol core lives in :mod:`phonecast.sip` and does no I/O; transports and
DNS live in :mod:`phonecast.net`; features (push, phone, campaign, content) build
on both; :mod:`phonecast.cli` only parses arguments and prints.
"""

__version__ = "0.1.0.dev0"
