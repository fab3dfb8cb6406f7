# rynnvla-ros: every target sets the workspace up first (idempotent, fast when nothing changed).
SHELL := /bin/bash
RUN := scripts/with_env.sh
PYTEST_ARGS ?=

.PHONY: setup test lint demo train-sim bench-model bench-sim bench-node bench-convert clean

setup:
	@scripts/setup.sh

## The test suite: tests/ and every package's test/ folder (conftest applies the DDS rules).
## One pytest process per folder, like `colcon test` runs each package: a thread a test leaves
## behind in one package (DDS, inference, physics) cannot starve the timing-sensitive tests of
## another. pytest's "no tests collected" (exit 5) fails the target like any failure.
TEST_DIRS := tests $(wildcard src/*/test)
test: setup
	@set -e; for dir in $(TEST_DIRS); do \
		echo "== pytest $$dir"; $(RUN) python -m pytest $(PYTEST_ARGS) $$dir; \
	done

lint: setup
	@$(RUN) ruff check .
	@$(RUN) ruff format --check .

## The main job: simulated arm + policy node with the shipped checkpoint.
demo: setup
	@$(RUN) rynnvla-demo

## Collect -> convert -> train -> evaluate, tiny preset, from scratch.
train-sim: setup
	@$(RUN) python scripts/train_sim.py

bench-model: setup
	@$(RUN) python benchmarks/bench_model.py

bench-sim: setup
	@$(RUN) python benchmarks/bench_sim.py

bench-node: setup
	@$(RUN) python benchmarks/bench_node.py

bench-convert: setup
	@$(RUN) python benchmarks/bench_convert.py

clean:
	rm -rf build install log .setup.lock
