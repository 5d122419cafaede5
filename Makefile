# k8s-network-test-daemonset. `make` alone lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

REGISTRY ?= localhost
IMAGE ?= $(REGISTRY)/k8s-network-test-daemonset
VERSION ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
# The architectures `make release`, `make image` and `make push` build or push (Docker's names).
ARCHS ?= amd64 arm64
CARGO ?= cargo

.PHONY: help setup build release test lint unit e2e soak demo image push deploy manifests rules bench bench-scale fuzz fuzz-short clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | awk -F'\t' '{printf "  %-12s %s\n", $$1, $$2}'

setup: ## Install what building and testing need (Rust musl targets, Debian packages, the qemu binfmt handler for arm64); idempotent
	@scripts/setup.sh

build: ## Build the agent (debug)
	$(CARGO) build --locked

release: setup ## Build the static musl release binaries for ARCHS (what the images ship; the soak and abuse tests measure amd64's)
	scripts/build-release.sh $(ARCHS)

lint: setup ## rustfmt check and clippy with -D warnings
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

test: setup lint manifests image fuzz-short ## The test command: unit, integration, end-to-end and image tests (root for the network ones)
	@mkdir -p target
	@# Every test binary runs even after a failure; the closing line counts what ran (see the script).
	@set -o pipefail; NETTEST_IMAGE=$(IMAGE):$(VERSION) $(CARGO) test --workspace --locked --no-fail-fast 2>&1 | tee target/test.log; \
	status=$$?; awk -f scripts/test-summary.awk target/test.log || status=1; exit $$status

e2e: setup ## End-to-end tests only: a namespace-built cluster, real agents, DNS, Prometheus and the matrix in Chromium (root)
	$(CARGO) test --locked --test e2e --test e2e_faults --test e2e_alarms --test agent_round --test matrix -- --nocapture

soak: release ## Soak: SOAK_ROUNDS (default 2000) rounds at a 1 s interval with churn and scrapes, about 35 min (root)
	NETTEST_SOAK_ROUNDS=$${SOAK_ROUNDS:-2000} $(CARGO) test --locked --test soak -- --nocapture

demo: setup ## Run the end-to-end cluster with real agents until Ctrl-C; prints where to look (root)
	$(CARGO) build --locked --bin k8s-network-test-daemonset
	$(CARGO) run --locked -q -p cluster-box --bin demo -- target/debug/k8s-network-test-daemonset

bench: setup release ## Benchmarks: ICMP prober vs fping, scrape load under the CPU limit, discovery's API cost, work per round at 1,000 vs 5,000 nodes, full rounds at scale (see BENCHMARKS.md); needs root
	scripts/bench-ping.sh
	scripts/bench-http.sh
	$(CARGO) test --release --locked --test bench_discovery -- --ignored --nocapture
	$(CARGO) bench --locked --bench round_scale
	$(MAKE) --no-print-directory bench-scale

bench-scale: setup release ## Full rounds of the release agent at 1,000 and 5,000 nodes with churn: API bytes, CPU, RSS, series, log lines (BENCH_SCALE_NODES, BENCH_SCALE_ROUNDS; about 10 min; root)
	$(CARGO) test --release --locked --test bench_scale -- --ignored --nocapture scale_rounds

image: setup ## Build a FROM-scratch image per ARCHS (IMAGE:VERSION-ARCH; IMAGE:VERSION is this machine's), then check each
	scripts/build-image.sh $(IMAGE) $(VERSION) $(ARCHS)
	@fail=0; for a in $(ARCHS); do scripts/check-image.sh $(IMAGE):$(VERSION)-$$a $$a || fail=1; done; exit $$fail

push: ## Push IMAGE:VERSION-ARCH for each of ARCHS and the manifest list IMAGE:VERSION to REGISTRY (after make image)
	scripts/push-image.sh $(IMAGE) $(VERSION) $(ARCHS)

deploy: ## Render k8s.yml with IMAGE:VERSION and kubectl apply it (kube-system)
	@mkdir -p target/manifests
	scripts/render-manifest.sh $(IMAGE) $(VERSION) > target/manifests/k8s.deploy.yml
	kubectl apply -f target/manifests/k8s.deploy.yml

manifests: ## Check k8s.yml, podmonitor.yml, networkpolicy.yml, the rules and prometheusrule.yml: yamllint, schemas, shapes, promtool, checkov
	scripts/check-manifests.sh

rules: ## Generate prometheusrule.yml from rules/networktest.rules.yml (the one source of the alert rules)
	"$$(scripts/setup-python.sh)/python" scripts/render-rules.py

fuzz: ## AFL++ on every parser, FUZZ_SECONDS (default 60) per target; findings go to fuzz/regressions/
	scripts/fuzz.sh

fuzz-short: ## The CI-sized fuzz pass: 10 s per target, quicker-building harnesses
	FUZZ_SECONDS=$${FUZZ_SECONDS:-10} FUZZ_PROFILE=fuzz-ci scripts/fuzz.sh

clean: ## Remove build output
	$(CARGO) clean
