# KaosNet developer front door: every target is a thin wrapper over scripts/ and CMake.
# `make` alone lists the targets.

.DEFAULT_GOAL := help
SHELL := /bin/bash

FORMAT_DIRS := $(wildcard src client-sdk tests bench)

.PHONY: help run test build asan sdk fuzz fuzz-long soak clean format pg-start pg-stop pg-status

help: ## list the targets
	@echo "KaosNet make targets:"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## /  \1\t/' | expand -t 14
	@echo
	@echo "Environment: KAOS_DATABASE_URL (run: use this DB instead of the local cluster),"
	@echo "  KAOS_DATA_DIR (run: key/data dir, default .kaos/data), KAOS_PG_PORT (local cluster"
	@echo "  port, default 5439), KAOS_TEST_SKIP_ASAN=1 (test: skip the sanitizer build+suite,"
	@echo "  for quick local loops only), ARGS (run: extra arguments for 'kaosnet serve')."

run: ## deps, release build, local PostgreSQL, migrate, keygen, serve in the foreground
	bash scripts/run.sh $(ARGS)

test: ## deps, release+asan+sdk builds, all test suites (what CI runs)
	bash scripts/test.sh

build: ## release build in build/release
	bash scripts/build.sh release

asan: ## Debug + ASan/UBSan build in build/asan
	bash scripts/build.sh asan

sdk: ## client SDK alone in build/sdk
	bash scripts/build.sh sdk

FUZZ_SECONDS ?= 60
fuzz: ## build the libFuzzer targets (clang) and run each for FUZZ_SECONDS (default 60)
	bash scripts/deps.sh
	bash scripts/build.sh fuzz
	@for t in build/fuzz/fuzz_*; do \
		name=$${t##*/fuzz_}; mkdir -p build/fuzz/corpus/$$name; \
		echo "==> $$t for $(FUZZ_SECONDS) s"; \
		$$t -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -artifact_prefix=build/fuzz/ \
			build/fuzz/corpus/$$name tests/fuzz/corpus/$$name || exit 1; \
	done

FUZZ_LONG_RUNS ?= 10000000
FUZZ_LONG_SECONDS ?= 3600
fuzz-long: ## every libFuzzer target (ASan/UBSan) to FUZZ_LONG_RUNS execs or FUZZ_LONG_SECONDS each
	bash scripts/deps.sh
	bash scripts/build.sh fuzz
	bash scripts/fuzz-long.sh --runs $(FUZZ_LONG_RUNS) --seconds $(FUZZ_LONG_SECONDS)

SOAK_MINUTES ?= 15
soak: ## 500 CCU realtime + RPC/storage soak through a lossy proxy for SOAK_MINUTES (default 15)
	bash bench/soak/run.sh --minutes $(SOAK_MINUTES)

clean: ## remove all build trees (keeps .kaos/: local DB and keys)
	rm -rf build

format: ## clang-format -i every .c/.h in src client-sdk tests bench
	@bash scripts/deps.sh clang-format >/dev/null
	@if [ -n "$(FORMAT_DIRS)" ]; then \
		find $(FORMAT_DIRS) -path '*/build' -prune -o -type f \( -name '*.c' -o -name '*.h' \) -print0 \
			| xargs -0 -r clang-format -i; \
	fi

pg-start: ## start the project-local PostgreSQL (.kaos/pg)
	bash scripts/pg-local.sh start

pg-stop: ## stop the project-local PostgreSQL
	bash scripts/pg-local.sh stop

pg-status: ## is the project-local PostgreSQL running, and its URL
	@bash scripts/pg-local.sh status || true
