# Acheron: `make demo` runs the main job, `make test` passes the tests; both set up a fresh
# Debian machine as root first (libfuse2 and fuse3 from apt, npm ci, build).
SHELL := /bin/bash
.DEFAULT_GOAL := help
PREFIX ?= /usr/local

.PHONY: help setup system-deps node-deps build test demo bench install uninstall clean

help:
	@echo "make demo     set up, start a node with manifests.d/ on /mnt/acheron, show an invoke"
	@echo "make test     set up, type-check, run every test; ends with 'N passed, N failed'"
	@echo "make bench    set up, run the benchmarks, write docs/BENCHMARKS.md"
	@echo "make install  put the acheron launcher in $(PREFIX)/bin (for mount -t fuse.acheron)"

setup: system-deps node-deps build

# libfuse.so.2 for fuse-native's prebuild, fusermount from fuse3, python3 for tests, curl for the demo,
# chromium for the debug page's browser test (playwright-core drives it; it never downloads a browser),
# promtool (Debian's prometheus package) to check /metrics and the alert rules in the tests.
system-deps:
	@missing=""; \
	ldconfig -p | grep -q 'libfuse.so.2 ' || missing="$$missing libfuse2"; \
	command -v fusermount >/dev/null || missing="$$missing fuse3"; \
	command -v python3 >/dev/null || missing="$$missing python3"; \
	command -v curl >/dev/null || missing="$$missing curl"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

node-deps: node_modules/.package-lock.json

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

build: node-deps
	npx tsc -p tsconfig.build.json

test: setup
	bash scripts/test.sh

demo: setup install
	bash scripts/demo.sh

bench: setup
	@dpkg -s libfuse-dev >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libfuse-dev pkg-config >/dev/null)
	node bench/run.mjs

# A launcher with absolute paths: mount(8) runs helpers with a minimal PATH.
install: build
	@printf '#!/bin/sh\nexec %s %s "$$@"\n' "$$(command -v node)" "$(CURDIR)/bin/acheron.js" > $(PREFIX)/bin/acheron
	@chmod 755 $(PREFIX)/bin/acheron
	@echo "installed $(PREFIX)/bin/acheron"

uninstall:
	rm -f $(PREFIX)/bin/acheron

clean:
	rm -rf dist
