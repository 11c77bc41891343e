# Two commands on a fresh machine: `make demo` and `make test`. Everything installs into .venv.
SHELL := /bin/bash
.ONESHELL:
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON_BOOTSTRAP ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export PYTHONPATH := $(CURDIR)
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# Never let a developer's real AWS credentials reach the emulator or the tests.
LOCAL_AWS := env -u AWS_PROFILE -u AWS_SESSION_TOKEN -u AWS_SECURITY_TOKEN -u AWS_ENDPOINT_URL AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=eu-central-1 AWS_REGION=eu-central-1

PORT     ?= 4566
PROVIDER ?=
# Set to deploy onto an AWS emulator you run yourself (e.g. LocalStack at http://localhost:4566).
ENDPOINT ?=
PYTEST_ARGS ?=

.PHONY: help venv package toolchain lint fmt tf-check unit e2e test demo up down bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): requirements-dev.txt requirements-lambda.txt
	$(PYTHON_BOOTSTRAP) -c 'import sys; sys.exit("Python 3.11+ is required") if sys.version_info < (3, 11) else None'
	[ -x $(PY) ] || $(PYTHON_BOOTSTRAP) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(STAMP) ## create .venv with the pinned requirements

package: $(STAMP) ## build dist/<function>.zip (reproducible)
	$(PY) -m devkit.packaging

toolchain: $(STAMP) ## assemble terraform and the offline provider mirrors
	$(PY) -m devkit.toolchain setup

lint: $(STAMP) ## ruff, and terraform fmt -check
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m devkit.toolchain exec -- terraform fmt -check -recursive -diff .

fmt: $(STAMP) ## format Python and HCL in place
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .
	$(PY) -m devkit.toolchain exec -- terraform fmt -recursive .

tf-check: package toolchain ## terraform init/validate/test against every offline provider version
	$(PY) -m devkit.tfcheck

unit: $(STAMP) ## handler unit tests with per-package coverage
	mkdir -p build
	$(LOCAL_AWS) $(PY) -m pytest tests/unit --disable-socket \
	  --cov=lambda_trigger --cov=lambda_writer --cov=lambda_security_monitor --cov=lambda_common \
	  --cov-report=term --cov-report=json:build/coverage.json $(PYTEST_ARGS)
	$(PY) scripts/check_coverage.py build/coverage.json

e2e: package toolchain ## deploy onto the embedded emulator and run the pipeline tests
	$(LOCAL_AWS) $(PY) -m pytest tests/e2e --allow-hosts=127.0.0.1,localhost,::1 $(PYTEST_ARGS)

test: lint tf-check ## everything: lint, terraform checks on each provider, all pytest suites
	mkdir -p build
	$(LOCAL_AWS) $(PY) -m pytest tests --allow-hosts=127.0.0.1,localhost,::1 \
	  --cov=lambda_trigger --cov=lambda_writer --cov=lambda_security_monitor --cov=lambda_common \
	  --cov-report=term --cov-report=json:build/coverage.json $(PYTEST_ARGS)
	$(PY) scripts/check_coverage.py build/coverage.json

demo: package toolchain ## the pipeline end to end on the embedded emulator (no Docker)
	$(LOCAL_AWS) $(PY) -m devkit.demo --port $(PORT) $(if $(PROVIDER),--provider $(PROVIDER))

up: package toolchain ## start the emulator on 127.0.0.1:$(PORT) and deploy the stack into the repo root
	$(LOCAL_AWS) $(PY) -m devkit.stack up --port $(PORT) $(if $(PROVIDER),--provider $(PROVIDER)) $(if $(ENDPOINT),--endpoint $(ENDPOINT))

down: $(STAMP) ## destroy the stack deployed by `make up` and stop the emulator
	$(LOCAL_AWS) $(PY) -m devkit.stack down --port $(PORT) $(if $(ENDPOINT),--endpoint $(ENDPOINT))

bench: $(STAMP) ## benchmarks of the handlers and the key validator (pytest-benchmark, moto in-process)
	$(LOCAL_AWS) $(PY) -m pytest benchmarks --benchmark-only --disable-socket $(PYTEST_ARGS)

clean: ## remove build output, the venv's tools, terraform working data (not the venv)
	rm -rf build dist .tools .emulator .pytest_cache .ruff_cache .coverage htmlcov
	find . -name __pycache__ -not -path './.venv/*' -prune -exec rm -rf {} +
