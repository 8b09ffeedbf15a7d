# labflow — build, test, demo. Everything a target needs is installed into the repo by the target.
SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= python3
CARGO ?= cargo
CRD_CACHE := .cache/crds

export LABFLOW_VENV := $(abspath $(VENV))
export LABFLOW_CRD_CACHE := $(abspath $(CRD_CACHE))

.PHONY: all venv crds test lint checkov fmt demo package plan clean

all: test

## venv: Python tools the tests talk to (moto server = the AWS emulator, botocore = reference presigner)
venv: $(VENV)/.installed
$(VENV)/.installed: requirements-dev.txt
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

## crds: the pinned upstream CRD schemas (sha256-verified) into an ignored cache
crds: $(CRD_CACHE)/.verified
$(CRD_CACHE)/.verified: scripts/fetch-crds.sh
	bash scripts/fetch-crds.sh $(CRD_CACHE)

## demo: the whole lifecycle on this machine — create the example lab (healthy at this checkout's
## commit), then tear it down to nothing — on the AWS emulator, the EKS simulator and kubesim.
LABFLOW_BIN = $(or $(CARGO_TARGET_DIR),target)/debug/labflow
demo: venv crds
	$(CARGO) build --quiet -p labflow-cli --bin labflow
	@# A failed create is still torn down, so the demo never leaves a local cloud running.
	$(LABFLOW_BIN) local up --env lab || { $(LABFLOW_BIN) local down --env lab; exit 1; }
	$(LABFLOW_BIN) local down --env lab

## test: every test of the workspace
test: venv crds
	$(CARGO) test --workspace --all-targets --no-fail-fast

## plan: `terraform validate` and `terraform plan` of infra/terraform against the AWS emulator, for
## example.tfvars and variants (tests/infra/tests/plan.rs; `make test` runs the same tests). Needs
## terraform on PATH (or LABFLOW_TERRAFORM) and the hashicorp/aws provider in a local filesystem
## mirror (found, or LABFLOW_TF_PROVIDER_MIRROR); never downloads. Plans against placeholder zips.
plan: venv
	$(CARGO) test -p labflow-infra-tests --test plan -- --nocapture

## lint: formatting, clippy with warnings as errors, checkov on infra/terraform
lint: checkov
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## checkov: static security scan of infra/terraform (own venv .venv/checkov; skips reasoned in the repo)
checkov:
	bash scripts/checkov.sh

## package: every Lambda zip (cargo-lambda + zig from PyPI into .venv) into dist/lambda for Terraform.
## LAMBDA_ARCH=x86_64 is the fallback; pass the same value to terraform as lambda_architecture.
LAMBDA_ARCH ?= arm64
package:
	LABFLOW_ARCH=$(LAMBDA_ARCH) bash scripts/package.sh

## bench: performance figures (docs/performance.md) — packages the Lambdas for this machine's
## architecture, runs labflow-bench on the zips (cold start, first invocation, peak RSS, zip
## size, one lifecycle's transitions/requests/cost), then the criterion micro-benchmarks.
.PHONY: bench
BENCH_ARCH ?= $(if $(filter aarch64 arm64,$(shell uname -m)),arm64,x86_64)
# Micro-benchmarks build without cross-crate LTO: the release profile's fat LTO over every
# dependency takes far longer to build than the benchmarks take to run.
BENCH_PROFILE := CARGO_PROFILE_BENCH_LTO=false CARGO_PROFILE_BENCH_CODEGEN_UNITS=16
bench: venv crds
	$(MAKE) package LAMBDA_ARCH=$(BENCH_ARCH)
	$(CARGO) build --quiet --workspace --bins
	$(or $(CARGO_TARGET_DIR),target)/debug/labflow-bench --zips dist/lambda
	$(BENCH_PROFILE) $(CARGO) bench --workspace --bench webhook --bench eks_token --bench evaluate --bench transitions
	$(BENCH_PROFILE) $(CARGO) test --workspace --profile bench --test budgets -- --include-ignored --nocapture

fmt:
	$(CARGO) fmt --all

clean:
	rm -rf $(VENV) .cache
