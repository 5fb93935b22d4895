"""The embedded content server: hosts each phone's XML object and records
every fetch, which is phonecast's proof that a phone took the content."""

from phonecast.content.server import ContentServer, Fetch

__all__ = ["ContentServer", "Fetch"]
