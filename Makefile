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
# Set to deploy onto an AWS emulator you run yourself (e.g. LocalStack at http://localhost:4566).
ENDPOINT ?=
# The local AWS that demo/up/down start: embedded (default) or ministack (IAM enforced, own venv in
# .tools/ministack). For e2e it picks the backends of the suite (default: both).
EMULATOR ?=
PYTEST_ARGS ?=
# pytest-xdist workers of `make test` and `make e2e`: each runs whole modules, an e2e module one
# deployment target at a time (tests/conftest.py's scheduler), so deployments overlap. Three on two
# cores: the e2e suites mostly wait (terraform, visibility timeouts, polling; a whole `make test`
# used about a third of the two cores' time), so a third worker overlaps waits instead of
# contending. `make check` is CPU-bound: CHECK_WORKERS, one per core.
TEST_WORKERS ?= 3
CHECK_WORKERS ?= 2

.PHONY: help venv package toolchain lint fmt check tf-check checkov unit e2e e2e-aws aws-sweep iam-proof iam-proof-aws test demo up down bench clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(STAMP): requirements-dev.txt requirements-lambda.txt pyproject.toml
	$(PYTHON_BOOTSTRAP) -c 'import sys; sys.exit("Python 3.11+ is required") if sys.version_info < (3, 11) else None'
	[ -x $(PY) ] || $(PYTHON_BOOTSTRAP) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
# The project itself, editable (ingestion_reconcile, lambda_common; .venv/bin/ingestion-reconcile),
# built offline by the pinned setuptools; its dependencies are the pins above. setuptools warns that
# a folder named like a package may shadow it: here they are the same folders.
	PYTHONWARNINGS='ignore:Editable installation' $(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

venv: $(STAMP) ## create .venv with the pinned requirements

package: $(STAMP) ## build dist/<function>.zip (reproducible)
	$(PY) -m devkit.packaging

toolchain: $(STAMP) ## terraform, and where hashicorp/aws comes from (a local mirror, else the registry)
	$(PY) -m devkit.toolchain setup

# actionlint checks the workflows' syntax, expressions and action inputs, and runs the venv's pinned
# shellcheck on each `run:` script (where the venv has none, Linux on arm64, it skips only that check;
# pyflakes is off: no step runs inline Python). zizmor audits them for security (unpinned uses,
# template injection, excessive permissions, credentials left by checkout, ...) with its pedantic
# persona, offline (its audits that ask GitHub are skipped). Any finding of either fails the target.
lint: $(STAMP) ## ruff, terraform fmt -check, actionlint and zizmor on the GitHub workflows
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m devkit.toolchain exec -- terraform fmt -check -diff . tests
	$(VENV)/bin/actionlint -shellcheck=$(VENV)/bin/shellcheck -pyflakes=
	$(VENV)/bin/zizmor --offline --persona=pedantic --strict-collection --no-progress --config .github/zizmor.yml .

fmt: $(STAMP) ## format Python and HCL in place
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .
	$(PY) -m devkit.toolchain exec -- terraform fmt . tests

tf-check: package toolchain ## terraform init/validate/test with each provider source (every mirror version)
	$(PY) -m devkit.tfcheck

# checkov has its own venv: it pins boto3 1.35.49, the dev requirements 1.44. The environment keeps it
# offline: no update check against PyPI, no platform downloads or uploads (also set in .checkov.yaml).
CHECKOV_VENV  := .tools/checkov-venv
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
CHECKOV_ENV   := env -u BC_API_KEY -u PRISMA_API_URL CKV_SKIP_PACKAGE_UPDATE_CHECK=true BC_SKIP_MAPPING=TRUE CHECKOV_RUN_SCA_PACKAGE_SCAN=false

$(CHECKOV_STAMP): requirements-checkov.txt
	$(PYTHON_BOOTSTRAP) -c 'import sys; sys.exit("Python 3.11+ is required") if sys.version_info < (3, 11) else None'
	[ -x $(CHECKOV_VENV)/bin/python ] || $(PYTHON_BOOTSTRAP) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r requirements-checkov.txt
	touch $@

checkov: $(CHECKOV_STAMP) ## checkov on the Terraform, offline; each accepted skip is inline on its resource, with its reason
	$(CHECKOV_ENV) $(CHECKOV_VENV)/bin/checkov --config-file .checkov.yaml

# --cov=<package> for every function folder and shared package of functions.json. Expanded lazily (=),
# in a recipe, once $(STAMP) has made the venv: on a fresh clone .venv does not exist at parse time.
COV_FLAGS = $(shell $(PY) -m devkit.functions --cov-flags)

unit: $(STAMP) ## handler unit tests with per-package coverage
	mkdir -p build
	$(LOCAL_AWS) $(PY) -m pytest tests/unit --disable-socket \
	  $(COV_FLAGS) \
	  --cov-report=term --cov-report=json:build/coverage.json $(PYTEST_ARGS)
	$(PY) -m scripts.check_coverage build/coverage.json

# The inner loop: what a one-line change needs, in under 3 minutes here. `make test` runs all of it too.
# The benchmarks run once each, unmeasured (--benchmark-disable), so that none rots between `make bench`s.
CHECK_SUITES := tests/unit tests/tooling tests/test_terraform_static.py tests/test_provider_6x.py benchmarks
check: lint ## fast tier: lint, unit and tooling tests, static Terraform tests, each benchmark once (no emulator, no deployment)
	$(LOCAL_AWS) $(PY) -m pytest $(CHECK_SUITES) --benchmark-disable -n $(CHECK_WORKERS) --dist loadscope --allow-hosts=127.0.0.1,localhost,::1 $(PYTEST_ARGS)

e2e: package toolchain ## deploy onto each emulator (EMULATOR=... for one) and run the pipeline tests
	$(LOCAL_AWS) E2E_BACKENDS=$(EMULATOR) $(PY) -m pytest tests/e2e -n $(TEST_WORKERS) --dist loadscope --allow-hosts=127.0.0.1,localhost,::1 $(PYTEST_ARGS)

iam-proof: package toolchain ## on MiniStack: every IAM grant of the stack is needed (build/iam-proof.json)
	mkdir -p build
	$(LOCAL_AWS) $(PY) -m devkit.iam_proof

# The IAM proof (MiniStack, mostly waiting on it) runs beside the pytest suites, then, in the same
# lane, the test of make iam-proof-aws's path on MiniStack (PROOF_LANE_TESTS: also MiniStack, also
# waiting; the main run leaves it out). Their output is build/iam-proof.log, printed when all is done;
# the target fails if either lane does (the recipe shell has -e: each status is caught with ||, so
# a failed pytest still waits for the proof, and a failed proof still runs the test after it).
PROOF_LANE_TESTS = tests/e2e/test_iam_proof_aws_run.py
test: lint tf-check checkov ## everything: lint, terraform checks on each provider, checkov, all pytest suites, the IAM proof
	mkdir -p build
	@echo "IAM proof, then $(PROOF_LANE_TESTS), running beside pytest: build/iam-proof.log"
	( lane=0; $(LOCAL_AWS) $(PY) -m devkit.iam_proof > build/iam-proof.log 2>&1 || lane=$$?; \
	  $(LOCAL_AWS) $(PY) -m pytest $(PROOF_LANE_TESTS) -p no:cacheprovider --allow-hosts=127.0.0.1,localhost,::1 \
	    >> build/iam-proof.log 2>&1 || lane=$$(( lane ? lane : $$? )); exit $$lane ) & proof=$$!; \
	tests=0; $(LOCAL_AWS) $(PY) -m pytest tests benchmarks --ignore=$(PROOF_LANE_TESTS) --benchmark-disable -n $(TEST_WORKERS) --dist loadscope --allow-hosts=127.0.0.1,localhost,::1 \
	  $(COV_FLAGS) \
	  --cov-report=term --cov-report=json:build/coverage.json $(PYTEST_ARGS) || tests=$$?; \
	coverage=0; $(PY) -m scripts.check_coverage build/coverage.json || coverage=$$?; \
	proof_status=0; wait $$proof || proof_status=$$?; cat build/iam-proof.log; \
	echo "pytest: exit $$tests; coverage: exit $$coverage; IAM proof and $(PROOF_LANE_TESTS): exit $$proof_status"; \
	test $$tests -eq 0 && test $$coverage -eq 0 && test $$proof_status -eq 0

# Real AWS: the standard credential chain, never LOCAL_AWS. Nothing is created without CONFIRM=yes.
e2e-aws: package toolchain ## deploy into your AWS account (CONFIRM=yes; RUN_ID, AWS_REGION), run the AWS cases, destroy, sweep
	$(PY) -m devkit.sandbox $(if $(filter yes,$(CONFIRM)),--yes) $(if $(RUN_ID),--run-id $(RUN_ID)) $(if $(AWS_REGION),--region $(AWS_REGION))

iam-proof-aws: package toolchain ## on AWS: take each grant away, run the scenarios (CONFIRM=yes; RUN_ID, AWS_REGION, ONLY=writer ...)
	$(PY) -m devkit.iam_proof.aws $(if $(filter yes,$(CONFIRM)),--yes) $(if $(RUN_ID),--run-id $(RUN_ID)) $(if $(AWS_REGION),--region $(AWS_REGION)) $(if $(ONLY),--only $(ONLY))

aws-sweep: $(STAMP) ## list what sandbox runs left by tag (RUN_ID=... or OLDER_THAN=24h), delete it with CONFIRM=yes
	$(PY) -m devkit.sweep $(if $(RUN_ID),--run-id $(RUN_ID),--older-than $(or $(OLDER_THAN),24h)) $(if $(filter yes,$(CONFIRM)),--yes) $(if $(AWS_REGION),--region $(AWS_REGION))

demo: package toolchain ## the pipeline end to end on the embedded emulator (EMULATOR=ministack: MiniStack)
	$(LOCAL_AWS) $(PY) -m devkit.demo --port $(PORT) $(if $(EMULATOR),--emulator $(EMULATOR))

up: package toolchain ## start the emulator on 127.0.0.1:$(PORT) and deploy the stack into the repo root
	$(LOCAL_AWS) $(PY) -m devkit.stack up --port $(PORT) $(if $(ENDPOINT),--endpoint $(ENDPOINT)) $(if $(EMULATOR),--emulator $(EMULATOR))

down: $(STAMP) ## destroy the stack deployed by `make up` and stop the emulator
	$(LOCAL_AWS) $(PY) -m devkit.stack down --port $(PORT) $(if $(ENDPOINT),--endpoint $(ENDPOINT)) $(if $(EMULATOR),--emulator $(EMULATOR))

bench: package toolchain ## benchmarks: handlers (pytest-benchmark), then the whole system (build/bench-system.json)
	mkdir -p build
	$(LOCAL_AWS) $(PY) -m pytest benchmarks --benchmark-only --disable-socket \
	  --benchmark-json=build/bench-handlers.json $(PYTEST_ARGS)
	$(LOCAL_AWS) $(PY) -m benchmarks.system --handlers-json build/bench-handlers.json

clean: ## remove build output, the venv's tools, terraform working data (not the venv)
	rm -rf build dist .tools .emulator .pytest_cache .ruff_cache .coverage htmlcov
	find . -name __pycache__ -not -path './.venv/*' -prune -exec rm -rf {} +
