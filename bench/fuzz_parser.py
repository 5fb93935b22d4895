"""A long fuzz campaign of the SIP parser: random and mutated messages.

Feeds ``parse_message`` (and, for what parses, ``validate``) random bytes
and RFC 4475/5118 messages with random byte flips, insertions and cuts.  The
only acceptable outcomes are a message or a ``SipError``; anything else is
printed with the input that caused it and the run fails.  Bounded in count
and time.  Run: ``.venv/bin/python bench/fuzz_parser.py --count 300000``.
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter
from pathlib import Path

from phonecast.sip import ParseError, SipError, parse_message, validate

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


def mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.random()
        pos = rng.randrange(len(buf) + 1)
        if op < 0.4 and buf:
            buf[min(pos, len(buf) - 1)] = rng.randrange(256)
        elif op < 0.6:
            buf[pos:pos] = rng.choice(
                [
                    b"\r\n",
                    b":",
                    b";",
                    b",",
                    b"<",
                    b">",
                    b'"',
                    b" ",
                    b"\x00",
                    b"%",
                    b"[",
                    b"]",
                    b"\r\n ",
                ]
            )
        elif op < 0.8:
            del buf[pos : pos + rng.randint(1, 20)]
        else:
            buf = buf[:pos]
    return bytes(buf)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    seeds = [p.read_bytes() for p in sorted((CORPUS / "rfc4475").glob("*.dat"))]
    seeds += [
        p.read_bytes().replace(b"\n", b"\r\n") for p in sorted((CORPUS / "rfc5118").iterdir())
    ]
    outcomes: Counter[str] = Counter()
    deadline = time.monotonic() + args.seconds
    start = time.monotonic()
    done = 0
    while done < args.count:
        done += 1
        if rng.random() < 0.2:
            data = rng.randbytes(rng.randint(0, 600))
        else:
            data = mutate(rng, rng.choice(seeds))
        try:
            msg = parse_message(data)
        except ParseError:
            outcomes["parse-error"] += 1
        except Exception as exc:
            print(f"FINDING: {type(exc).__name__}: {exc} for input {data!r}")
            raise SystemExit(1) from exc
        else:
            try:
                validate(msg)
                outcomes["valid"] += 1
            except SipError:
                outcomes["refused-by-validation"] += 1
            except Exception as exc:
                print(f"FINDING in validate: {type(exc).__name__}: {exc} for input {data!r}")
                raise SystemExit(1) from exc
        if time.monotonic() > deadline:
            break
    elapsed = time.monotonic() - start
    print(
        f"{done} inputs in {elapsed:.0f} s, seed {args.seed}: "
        + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))
        + "; no other outcome"
    )


if __name__ == "__main__":
    main()
