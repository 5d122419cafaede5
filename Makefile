# k8s-network-test-daemonset. `make` alone lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

REGISTRY ?= localhost
IMAGE ?= $(REGISTRY)/k8s-network-test-daemonset
VERSION ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
MUSL_TARGET := x86_64-unknown-linux-musl
CARGO ?= cargo

.PHONY: help setup build release test lint unit e2e soak demo image push deploy manifests bench fuzz fuzz-short clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | awk -F'\t' '{printf "  %-10s %s\n", $$1, $$2}'

setup: ## Install what building and testing need (rustup musl target, Debian packages); idempotent
	@scripts/setup.sh

build: ## Build the agent (debug)
	$(CARGO) build --locked

release: setup ## Build the static musl release binary (what the image ships; the soak and abuse tests measure it)
	CC_x86_64_unknown_linux_musl=musl-gcc $(CARGO) build --release --locked --target $(MUSL_TARGET) -p k8s-network-test-daemonset

lint: setup ## rustfmt check and clippy with -D warnings
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

test: setup lint manifests image fuzz-short ## The test command: unit, integration, end-to-end and image tests (root for the network ones)
	@mkdir -p target
	@# Every test binary runs even after a failure; the closing line counts what ran (see the script).
	@set -o pipefail; NETTEST_IMAGE=$(IMAGE):$(VERSION) $(CARGO) test --workspace --locked --no-fail-fast 2>&1 | tee target/test.log; \
	status=$$?; awk -f scripts/test-summary.awk target/test.log || status=1; exit $$status

e2e: setup ## End-to-end tests only: a namespace-built cluster, real agents, DNS, Prometheus and the matrix in Chromium (root)
	$(CARGO) test --locked --test e2e --test agent_round --test matrix -- --nocapture

soak: release ## Soak: SOAK_ROUNDS (default 2000) rounds at a 1 s interval with churn and scrapes, about 35 min (root)
	NETTEST_SOAK_ROUNDS=$${SOAK_ROUNDS:-2000} $(CARGO) test --locked --test soak -- --nocapture

demo: setup ## Run the end-to-end cluster with real agents until Ctrl-C; prints where to look (root)
	$(CARGO) build --locked --bin k8s-network-test-daemonset
	$(CARGO) run --locked -q -p cluster-box --bin demo -- target/debug/k8s-network-test-daemonset

bench: setup release ## Benchmarks: ICMP prober vs fping, scrape load under the CPU limit, discovery's API cost, work per round at 1,000 vs 5,000 nodes (see BENCHMARKS.md); needs root
	scripts/bench-ping.sh
	scripts/bench-http.sh
	$(CARGO) test --release --locked --test bench_discovery -- --ignored --nocapture
	$(CARGO) bench --locked --bench round_scale

image: setup ## Build the static musl binary and the FROM-scratch image IMAGE:VERSION, then check it
	scripts/build-image.sh $(IMAGE) $(VERSION)
	scripts/check-image.sh $(IMAGE):$(VERSION)

push: ## Push IMAGE:VERSION to REGISTRY (after make image)
	docker push $(IMAGE):$(VERSION)

deploy: ## Render k8s.yml with IMAGE:VERSION and kubectl apply it (kube-system)
	@mkdir -p target/manifests
	scripts/render-manifest.sh $(IMAGE) $(VERSION) > target/manifests/k8s.deploy.yml
	kubectl apply -f target/manifests/k8s.deploy.yml

manifests: ## Check k8s.yml, podmonitor.yml and networkpolicy.yml: yamllint, Kubernetes schemas, restricted profile, checkov
	scripts/check-manifests.sh

fuzz: ## AFL++ on every parser, FUZZ_SECONDS (default 60) per target; findings go to fuzz/regressions/
	scripts/fuzz.sh

fuzz-short: ## The CI-sized fuzz pass: 10 s per target, quicker-building harnesses
	FUZZ_SECONDS=$${FUZZ_SECONDS:-10} FUZZ_PROFILE=fuzz-ci scripts/fuzz.sh

clean: ## Remove build output
	$(CARGO) clean
