# phonecast: the two set-up commands are `make demo` and `make test`.
# Each target creates and fills .venv on its own.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The SIP core and the per-message paths of the asyncio layers are compiled
# with mypyc by the install (setup.py): a change to any of them installs again.
CORE := $(wildcard src/phonecast/sip/*.py) src/phonecast/net/endpoint.py src/phonecast/net/limits.py src/phonecast/net/replies.py src/phonecast/net/retired.py src/phonecast/net/timers.py \
	src/phonecast/net/stream.py src/phonecast/net/stream_room.py src/phonecast/net/tls_session.py src/phonecast/net/transport.py src/phonecast/push/pusher.py \
	src/phonecast/phone/emulator.py src/phonecast/phone/events.py src/phonecast/phone/fetcher.py src/phonecast/phone/httpget.py \
	src/phonecast/phone/pushes.py src/phonecast/phone/state.py

.PHONY: test demo bench bench-quick bench-peers lint fuzz clean

$(STAMP): pyproject.toml setup.py $(CORE)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,lint,bench]'
	touch $(STAMP)

# The whole suite on the compiled build, then the tests of every compiled
# package again on the interpreted sources (PHONECAST_PURE=1), the reference.
test: $(STAMP)
	$(BIN)/ruff check src tests bench setup.py
	$(BIN)/mypy
	PHONECAST_REQUIRE_COMPILED=1 $(BIN)/pytest
	PHONECAST_PURE=1 $(BIN)/pytest -q tests/sip tests/net tests/phone tests/push tests/test_pure.py

demo: $(STAMP)
	$(BIN)/phonecast demo

# Every benchmark of bench/README.md (tens of minutes; the side-by-side ones
# need sip-tester, the profiles linux-perf).  bench-quick: the in-process
# figures only (a minute).  SIPp's rates run past where each side stops
# keeping up, so that both ceilings show.
bench: bench-quick bench-peers

bench-quick: $(STAMP)
	$(BIN)/python bench/parse.py
	$(BIN)/python bench/emulator_cpu.py --calls 5000
	$(BIN)/python bench/fuzz_parser.py --count 100000

bench-peers: $(STAMP)
	$(BIN)/python -m bench.push_vs_sipp --count 20000 --sipp-rates 4000,8000,12000,16000,20000,24000
	$(BIN)/python -m bench.phone_vs_sipp --count 20000 --rates 4000,8000,12000,16000,20000
	$(BIN)/python -m bench.push_vs_fleet --count 2000 --passes 3
	$(BIN)/python bench/campaign.py --count 10000
	$(BIN)/python -m bench.fleet --fleet 10000 --count 20000 --rates 4000,8000,12000,16000,20000
	$(BIN)/python -m bench.push_vs_sipp --memory-run 200000
	$(BIN)/python -m bench.profile_hot_paths --pushes 5000 --calls 3000
	PHONECAST_PURE=1 $(BIN)/python -m bench.profile_hot_paths --pushes 5000 --calls 3000
	$(BIN)/python -m bench.native_profile --target phone --rate 4000
	$(BIN)/python -m bench.native_profile --target pusher

lint: $(STAMP)
	$(BIN)/ruff check src tests bench setup.py
	$(BIN)/ruff format --check src tests bench setup.py
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build dist *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find src -name '*.so' -delete
