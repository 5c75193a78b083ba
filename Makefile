# The two commands of the README: `make run` and `make test`.
BUILD ?= build
ASAN_BUILD ?= build-asan
PORT ?= 8888
DATA ?= ./var

.PHONY: all build run test unit integration deps test-deps clean

all: build

deps:
	@scripts/deps.sh

test-deps:
	@scripts/deps.sh --test

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j$$(nproc)

run: build
	$(BUILD)/labbook serve --data $(DATA) --port $(PORT)

# C unit tests under AddressSanitizer and UndefinedBehaviorSanitizer.
unit: test-deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DLABBOOK_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j$$(nproc)
	cd $(ASAN_BUILD) && ctest --output-on-failure

# node:test suites against a real hub, driven by real Jupyter clients.
integration: build test-deps
	LABBOOK_BIN=$(CURDIR)/$(BUILD)/labbook tests/integration/run.sh

test: unit integration

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
