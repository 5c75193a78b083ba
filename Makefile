# The two commands of the README: `make run` and `make test`.
BUILD ?= build
ASAN_BUILD ?= build-asan
PORT ?= 8888
DATA ?= ./var

.PHONY: all build web run test check unit python integration browser screenshots fuzz deps test-deps clean

all: build

deps:
	@scripts/deps.sh

test-deps:
	@scripts/deps.sh --test

build: deps web
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j$$(nproc) -- --no-print-directory

# The browser UI (TypeScript, bundled by esbuild) into web/dist, which the hub serves.
web: deps
	@web/build.sh

run: build
	$(BUILD)/labbook serve --data $(DATA) --port $(PORT)

# C unit tests under AddressSanitizer and UndefinedBehaviorSanitizer.
unit: test-deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DLABBOOK_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j$$(nproc) -- --no-print-directory
	cd $(ASAN_BUILD) && ctest --output-on-failure --timeout 600

# The google.colab package (python/), with the Python that runs the kernels.
python:
	/usr/bin/python3 -m unittest discover -s tests/python

# node:test suites against a real hub, driven by real Jupyter clients.
integration: build test-deps
	LABBOOK_BIN=$(CURDIR)/$(BUILD)/labbook tests/integration/run.sh

# playwright-core driving Debian's chromium against a real hub.
browser: build test-deps
	LABBOOK_BIN=$(CURDIR)/$(BUILD)/labbook tests/browser/run.sh

test: check unit python integration browser

# Retakes docs/img/home.png and docs/img/notebook.png (shown in the README).
screenshots: build test-deps
	LABBOOK_SCREENSHOTS=docs LABBOOK_BIN=$(CURDIR)/$(BUILD)/labbook tests/browser/run.sh screenshots.test.mjs

check:
	@scripts/check-source.sh

# libFuzzer targets (clang): make fuzz SECONDS=60
fuzz:
	tests/fuzz/build.sh $(or $(SECONDS),60)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) web/dist
