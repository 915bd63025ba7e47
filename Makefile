# Two commands for a fresh Debian machine with Rust:
#   make run   - the edge with the demo on 127.0.0.1:8080 (Ctrl-C stops everything)
#   make test  - every test, against real Redis, PostgreSQL and upstream servers
# Both install the Debian packages they need when they are missing.

SHELL := /bin/bash
CARGO ?= cargo

# Packages each command needs (Pingora builds with cmake and links OpenSSL).
BUILD_PKGS := cmake pkg-config libssl-dev
SERVICE_PKGS := redis-server redis-tools postgresql
# chromium: the bot filter's page is tested in a real browser; python3-pip: for rotel, the
# OTLP collector the tracing tests export to; fastapi + uvicorn: a second real upstream for the
# path-attack tests (Starlette decodes paths before routing); kubernetes-validate: the
# Kubernetes manifests against the API schemas (scripts/check-deploy.sh, which also needs the
# openssl command for a throwaway certificate); Node.js and npm (scripts/ensure-node-peers.sh):
# for oidc-provider, the OpenID Provider the social-login tests sign in at; aiosmtpd: the SMTP
# relay of the mail tests (and the demo's mail sink); schemathesis: the contract test
# (docs/openapi.json against the running edge)
TEST_PKGS := chromium python3-pip openssl nginx
TEST_PYPI := rotel=rotel fastapi=fastapi uvicorn=uvicorn kubernetes_validate=kubernetes-validate \
	aiosmtpd=aiosmtpd schemathesis=schemathesis
BENCH_PKGS := nginx wrk nghttp2-client

.PHONY: run test lint check deps-build deps-services deps-demo deps-test deps-lint deps-bench bench fmt release-pgo

run: deps-build deps-services deps-demo
	$(CARGO) build --release -p edge -p demo-movies
	./scripts/run-demo.sh

test: deps-build deps-services deps-test lint
	$(CARGO) test --workspace
	./scripts/check-deploy.sh target/debug/edge

# formatting and clippy (workspace lints in Cargo.toml: no unwrap/expect outside tests)
lint: deps-build deps-lint
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -q -- -D warnings

check:
	$(CARGO) run -q -p edge -- check --conf conf

# a profile-guided release build: target/release/edge-pgo (docs/benchmarks.md has the gain)
release-pgo: deps-build deps-services deps-bench deps-test
	./scripts/release-pgo.sh

bench: deps-build deps-services deps-bench deps-test
	./bench/proxy.sh
	./bench/limiter.sh
	./bench/login-storm.sh
	./bench/users.sh
	./bench/identity.sh
	./bench/tracing.sh
	./bench/canonical-path.sh
	./bench/device-poll.sh

deps-build:
	@./scripts/ensure-packages.sh $(BUILD_PKGS)

deps-services:
	@./scripts/ensure-packages.sh $(SERVICE_PKGS)

# the demo's SMTP sink (scripts/smtp_sink.py) runs on aiosmtpd from PyPI
deps-demo:
	@./scripts/ensure-packages.sh python3-pip
	@./scripts/ensure-python-packages.sh aiosmtpd=aiosmtpd

deps-test:
	@./scripts/ensure-packages.sh $(TEST_PKGS)
	@./scripts/ensure-python-packages.sh $(TEST_PYPI)
	@./scripts/ensure-node-peers.sh

deps-lint:
	@$(CARGO) fmt --version >/dev/null 2>&1 || rustup component add rustfmt
	@$(CARGO) clippy --version >/dev/null 2>&1 || rustup component add clippy

deps-bench:
	@./scripts/ensure-packages.sh $(BENCH_PKGS)

fmt:
	$(CARGO) fmt --all
