"""RFC 4475 messages against the emulator, in a network namespace of our own."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CORPUS, ROOT

NS_SCRIPT = Path(__file__).parent / "ns" / "torture.py"
ERROR_CODES = {400, 401, 406, 415, 416, 420, 505}


def _verdicts() -> dict[str, dict[str, str]]:
    with (CORPUS / "rfc4475" / "verdicts.tsv").open() as fh:
        return {r["name"]: r for r in csv.DictReader(fh, delimiter="\t")}


def test_torture_messages_get_the_table_responses() -> None:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        reason = "unshare and ip (util-linux, iproute2) are needed for a private namespace"
        if os.environ.get("PHONECAST_REQUIRE_PEERS"):
            pytest.fail(reason)
        pytest.skip(reason)
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"}
    run = subprocess.run(
        ["unshare", "-n", sys.executable, str(NS_SCRIPT), str(CORPUS / "rfc4475")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    if run.returncode != 0 and "Operation not permitted" in run.stderr:
        pytest.skip("this machine does not allow unprivileged network namespaces")
    assert run.returncode == 0, run.stderr[-3000:]
    doc = json.loads(run.stdout.strip().splitlines()[-1])
    results: dict[str, int | None] = doc["results"]
    for name, row in _verdicts().items():
        if name == "test":
            continue
        got = results[name]
        message = (CORPUS / "rfc4475" / f"{name}.dat").read_bytes()
        is_response = message.startswith(b"SIP/")
        if is_response:
            assert got is None, f"{name}: a response must not be answered (got {got})"
        elif row["uas_response"] != "-":
            assert got == int(row["uas_response"]), f"{name}: {got} != {row['uas_response']}"
        else:
            assert got is not None and got not in ERROR_CODES, f"{name}: valid, got {got}"
    assert doc["after"] == "delivered"
