"""The phone inventory: which phones a campaign addresses, and how.

Format (CSV with a header row; YAML and TOML hold the same records)::

    name,target,user,password,proxy,transport,vendor,tags
    lobby-1,sip:1001@10.0.0.5:5060,,env:LOBBY_PW,,udp,cisco-spa,building=B lobby

``name``, ``target`` and ``password`` are required; ``user`` defaults to the
target URI's user; ``password`` is ``env:VAR``, ``file:PATH``, a literal, or
``literal:`` and the password exactly as it follows (one that starts like
the others, or with spaces at either end, which are otherwise trimmed);
``proxy`` is a Cisco host list; ``tags`` are space- or ';'-separated items,
each ``key=value`` or a bare tag.  Everything is validated before anything is
sent: :func:`load_inventory` returns every bad row with its line number and
what is wrong, and flags duplicate names and targets.
"""

from __future__ import annotations

import csv
import io
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phonecast.credentials import Secret, SecretError, resolve_secret
from phonecast.sip import ParseError, SipUri, parse_uri

REQUIRED = ("name", "target", "password")
COLUMNS = ("name", "target", "user", "password", "proxy", "transport", "vendor", "tags")
TRANSPORTS = ("udp", "tcp", "tls")
#: A password column starting so is the password exactly as it follows.
LITERAL = "literal:"

Tag = tuple[str, str | None]


@dataclass(frozen=True, slots=True)
class Phone:
    """One line of one phone, ready to push to."""

    name: str
    target: SipUri
    user: str
    password: Secret = field(repr=False)
    proxy: str | None = None
    transport: str | None = None
    vendor: str | None = None
    tags: frozenset[Tag] = frozenset()
    line: int = 0

    def transport_or(self, default: str | None = None) -> str:
        """The transport a push to this phone takes: its own, else
        ``default``, else what its target's scheme implies (TLS for sips)."""
        return self.transport or default or ("tls" if self.target.secure else "udp")

    def has_tag(self, tag: str) -> bool:
        """True if the phone carries a bare tag or key ``tag``."""
        return any(k == tag for k, _ in self.tags)

    def tag_value(self, key: str) -> str | None:
        """The value of ``key=value`` tags, if any."""
        for k, v in self.tags:
            if k == key:
                return v
        return None

    def tags_text(self) -> str:
        """Tags in inventory form."""
        return " ".join(k if v is None else f"{k}={v}" for k, v in sorted(self.tags, key=str))


@dataclass(frozen=True, slots=True)
class InventoryProblem:
    """One thing wrong with one row: where and what."""

    source: str
    line: int
    message: str
    column: str | None = None

    def __str__(self) -> str:
        col = f" [{self.column}]" if self.column else ""
        return f"{self.source}:{self.line}:{col} {self.message}"


@dataclass(frozen=True, slots=True)
class Inventory:
    """Valid phones and the problems found; send nothing unless ``ok``."""

    phones: tuple[Phone, ...]
    problems: tuple[InventoryProblem, ...]

    @property
    def ok(self) -> bool:
        """True when no row had a problem."""
        return not self.problems


class InventoryError(ValueError):
    """The inventory file cannot be read at all (missing, wrong format)."""


def parse_tags(text: str) -> frozenset[Tag]:
    """``building=B lobby`` or ``building=B;lobby`` -> {(building, B), (lobby, None)}."""
    out: set[Tag] = set()
    for item in text.replace(";", " ").split():
        key, eq, value = item.partition("=")
        if not key:
            raise ValueError(f"tag {item!r} has no name")
        out.add((key, value if eq else None))
    return frozenset(out)


def _row_to_phone(
    row: dict[str, Any], source: str, line: int, base: Path | None
) -> tuple[Phone | None, list[InventoryProblem]]:
    problems: list[InventoryProblem] = []

    def bad(column: str | None, message: str) -> None:
        problems.append(InventoryProblem(source, line, message, column))

    values = {k: ("" if v is None else str(v).strip()) for k, v in row.items() if k}
    unknown = sorted(set(values) - set(COLUMNS))
    if unknown:
        bad(None, f"unknown column(s): {', '.join(unknown)}")
    for col in REQUIRED:
        if not values.get(col):
            bad(col, f"{col} is empty")
    target: SipUri | None = None
    if values.get("target"):
        try:
            uri = parse_uri(values["target"])
        except ParseError as exc:
            bad("target", f"not a SIP URI: {exc.message}")
        else:
            if isinstance(uri, SipUri) and uri.password is not None:
                # Never echoed: it would be stored, reported and shown with
                # the target.  The line's password has its own column.
                bad(
                    "target",
                    "a target carries no password (RFC 3261 19.1.1): use the password column",
                )
            elif isinstance(uri, SipUri) and (uri.transport or "udp").lower() not in TRANSPORTS:
                bad("target", f"transport={uri.transport} is not one of {', '.join(TRANSPORTS)}")
            elif isinstance(uri, SipUri):
                target = uri
            else:
                bad("target", f"scheme {uri.scheme!r} is not sip or sips")
    user = values.get("user") or ((target.user_unescaped or "") if target else "")
    if target is not None and not user:
        bad("user", "no user: give one or put it in the target URI")
    secret: Secret | None = None
    if values.get("password", "").startswith(LITERAL):
        exact = str(row["password"]).lstrip()[len(LITERAL) :]  # untrimmed on the right
        if exact:
            secret = Secret(exact)
        else:
            bad("password", f"{LITERAL} needs the password after it")
    elif values.get("password"):
        try:
            secret = resolve_secret(values["password"], base=base)
        except SecretError as exc:
            bad("password", str(exc))
    transport = values.get("transport", "").lower() or None
    if transport is not None and transport not in TRANSPORTS:
        bad("transport", f"transport {transport!r} is not one of {', '.join(TRANSPORTS)}")
    tags: frozenset[Tag] = frozenset()
    try:
        tags = parse_tags(values.get("tags", ""))
    except ValueError as exc:
        bad("tags", str(exc))
    vendor = values.get("vendor") or None
    if vendor is not None:
        from phonecast.push.profiles import PROFILES

        if vendor.lower() not in PROFILES:
            bad("vendor", f"unknown vendor {vendor!r}; known: {', '.join(sorted(PROFILES))}")
    if problems or target is None or secret is None:
        return None, problems
    phone = Phone(
        name=values["name"],
        target=target,
        user=user,
        password=secret,
        proxy=values.get("proxy") or None,
        transport=transport,
        vendor=vendor,
        tags=tags,
        line=line,
    )
    return phone, problems


def _records(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    suffix = path.suffix.lower()
    try:
        # newline="": the csv module's own line handling (a quoted CR in a
        # password is kept, not turned into LF).  utf-8-sig: a byte order
        # mark (Excel's "CSV UTF-8", Notepad) is not part of the first
        # column's name, nor an invalid TOML statement.
        with path.open(encoding="utf-8-sig", newline="") as fh:
            text = fh.read()
    except OSError as exc:
        raise InventoryError(f"cannot read inventory {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise InventoryError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    if suffix in (".yaml", ".yml"):
        return _yaml_records(path, text)
    if suffix == ".toml":
        return _toml_records(path, text)
    return _csv_records(path, text)


def _csv_records(path: Path, text: str) -> list[tuple[int, dict[str, Any]]]:
    """Rows by line, parsed strictly: a quote never closed once swallowed
    every later row into one field, silently; now it is an error naming
    the line where that row began."""
    reader = csv.DictReader(io.StringIO(text), strict=True)
    start = 1
    try:
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise InventoryError(f"{path}:1: header row lacks column(s) {', '.join(missing)}")
        reader.fieldnames = header
        out: list[tuple[int, dict[str, Any]]] = []
        while True:
            start = reader.line_num + 1
            row = next(reader, None)
            if row is None:
                return out
            if not any((v or "").strip() for k, v in row.items() if k):
                continue
            extra = row.pop(None, None)
            if extra:
                row["_extra"] = (
                    f"{len(extra)} field(s) more than the header's columns"
                    " (a value holding a comma must be quoted)"
                )
            out.append((reader.line_num, row))
    except csv.Error as exc:
        hint = " (a quoted field never closed?)" if "end of data" in str(exc) else ""
        raise InventoryError(f"{path}:{start}: malformed CSV: {exc}{hint}") from None


def _listed(path: Path, data: Any, lines: Sequence[int] | None) -> list[tuple[int, dict[str, Any]]]:
    phones = data.get("phones") if isinstance(data, dict) else data
    if not isinstance(phones, list):
        raise InventoryError(f"{path}: expected a list of phones (or a 'phones' list)")
    out: list[tuple[int, dict[str, Any]]] = []
    for i, item in enumerate(phones):
        line = lines[i] if lines and i < len(lines) else i + 1
        if not isinstance(item, dict):
            out.append((line, {"_extra": "entry is not a mapping"}))
            continue
        if isinstance(item.get("tags"), list):
            item = {**item, "tags": " ".join(map(str, item["tags"]))}
        out.append((line, item))
    return out


def _yaml_records(path: Path, text: str) -> list[tuple[int, dict[str, Any]]]:
    import yaml

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # Line, column and the problem only: the error's own text quotes the
        # source line, which may be a password.
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        context = getattr(exc, "context", None)
        said = f"{context}: {problem}" if context else problem
        raise InventoryError(f"{path}{where}: invalid YAML: {said}") from None
    lines: list[int] = []
    seq = node
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == "phones":
                seq = value
    if isinstance(seq, yaml.SequenceNode):
        lines = [item.start_mark.line + 1 for item in seq.value]
    return _listed(path, data, lines)


def _toml_records(path: Path, text: str) -> list[tuple[int, dict[str, Any]]]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InventoryError(f"{path}: invalid TOML: {exc}") from None
    # Lines as TOML counts them, at LF only: splitlines() also breaks at
    # U+2028, U+0085 and others, which a TOML string may hold.
    starts = [n + 1 for n, ln in enumerate(text.split("\n")) if ln.strip() == "[[phones]]"]
    return _listed(path, data, starts)


def load_inventory(path: str | Path) -> Inventory:
    """Read and validate an inventory; never raises for a bad row."""
    path = Path(path)
    source = str(path)
    phones: list[Phone] = []
    problems: list[InventoryProblem] = []
    seen_names: dict[str, int] = {}
    seen_targets: dict[tuple[object, ...], int] = {}
    for line, row in _records(path):
        extra = row.pop("_extra", None)
        if extra:
            # How many, not what: a password with an unquoted comma spills
            # its tail into them.
            problems.append(InventoryProblem(source, line, str(extra)))
            continue
        phone, row_problems = _row_to_phone(row, source, line, path.parent)
        problems.extend(row_problems)
        if phone is None:
            continue
        if phone.name in seen_names:
            problems.append(
                InventoryProblem(
                    source,
                    line,
                    f"duplicate name {phone.name!r} (first on line {seen_names[phone.name]})",
                    "name",
                )
            )
            continue
        key = (phone.target.scheme, phone.target.user, phone.target.host.lower(), phone.target.port)
        if key in seen_targets:
            problems.append(
                InventoryProblem(
                    source,
                    line,
                    f"duplicate target {phone.target} (first on line {seen_targets[key]})",
                    "target",
                )
            )
            continue
        seen_names[phone.name] = line
        seen_targets[key] = line
        phones.append(phone)
    return Inventory(tuple(phones), tuple(problems))


def select(
    phones: Iterable[Phone], *, where: Sequence[str] = (), tags: Sequence[str] = ()
) -> list[Phone]:
    """Phones matching every ``key=value`` in ``where`` and carrying every tag."""
    conditions = []
    for cond in where:
        key, eq, value = cond.partition("=")
        if not eq or not key:
            raise ValueError(f"--where takes key=value, got {cond!r}")
        conditions.append((key, value))
    return [
        p
        for p in phones
        if all(p.tag_value(k) == v for k, v in conditions) and all(p.has_tag(t) for t in tags)
    ]


def write_inventory_csv(path: str | Path, phones: Iterable[Phone], *, reveal: bool = True) -> None:
    """Write phones in the CSV form :func:`load_inventory` reads.

    With ``reveal`` the password column holds the literal password (the
    emulator's own test credentials), written so that :func:`load_inventory`
    reads it back exactly: one that would read otherwise (``env:...``,
    ``file:...``, spaces at either end) is written ``literal:...``;
    otherwise the phone's secret source.
    """
    with Path(path).open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        for p in phones:
            writer.writerow(
                [
                    p.name,
                    str(p.target),
                    p.user,
                    _password_cell(p.password.reveal()) if reveal else p.password.source,
                    p.proxy or "",
                    p.transport or "",
                    p.vendor or "",
                    p.tags_text(),
                ]
            )


def _password_cell(password: str) -> str:
    """A literal password as the inventory column that reads back as it."""
    if password != password.strip() or password.startswith(("env:", "file:", LITERAL)):
        return LITERAL + password
    return password
