# Acheron: `make demo` runs the main job, `make test` passes the tests; both set up a fresh
# Debian machine as root first (libfuse2 and fuse3 from apt, npm ci, build).
SHELL := /bin/bash
.DEFAULT_GOAL := help
PREFIX ?= /usr/local

.PHONY: help setup system-deps promtool node-deps build test reliability demo demo-ha bench install uninstall clean

help:
	@echo "make demo     set up, start a node with manifests.d/ on /mnt/acheron, show an invoke"
	@echo "make demo-ha  set up, 3-member etcd + 2 control servers, a node and WorldFS; kill one server, they carry on"
	@echo "make test     set up, type-check, run every test; ends with 'N passed, N failed'"
	@echo "make reliability  the crash and fuzz suites, 8 times longer (RELIABILITY_SCALE=N)"
	@echo "make bench    set up, run the benchmarks, write docs/BENCHMARKS.md"
	@echo "make install  put the acheron launcher in $(PREFIX)/bin (for mount -t fuse.acheron)"

setup: system-deps node-deps build

# libfuse.so.2 for fuse-native's prebuild, fusermount from fuse3, python3 for tests, curl for the demo,
# chromium for the debug page's browser test (playwright-core drives it; it never downloads a browser),
# etcd and etcdctl for the etcd control store (tests run their own members on free loopback ports).
# promtool (from Debian's prometheus package, without the server) to check /metrics and the alert rules.
system-deps:
	@missing=""; \
	ldconfig -p | grep -q 'libfuse.so.2 ' || missing="$$missing libfuse2"; \
	command -v fusermount >/dev/null || missing="$$missing fuse3"; \
	command -v python3 >/dev/null || missing="$$missing python3"; \
	command -v curl >/dev/null || missing="$$missing curl"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v etcd >/dev/null || missing="$$missing etcd-server"; \
	command -v etcdctl >/dev/null || missing="$$missing etcd-client"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@command -v promtool >/dev/null || $(MAKE) --no-print-directory promtool

# Only the promtool binary (static but for libc) out of Debian's prometheus package: installing the
# package would also install and start a Prometheus server.
promtool:
	@echo "installing: promtool (from Debian's prometheus package)"
	@dir=$$(mktemp -d) && cd $$dir && \
	  { apt-get download prometheus >/dev/null 2>&1 || { apt-get update -qq && apt-get download prometheus >/dev/null; }; } && \
	  dpkg-deb -x prometheus_*.deb root && install -m 755 root/usr/bin/promtool /usr/local/bin/promtool && \
	  cd / && rm -rf $$dir

node-deps: node_modules/.package-lock.json

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	bash scripts/tap-plugins.sh
	@touch $@

build: node-deps wasm/build/echo.wasm
	npx tsc -p tsconfig.build.json

# The wasm echo driver (manifests.d/echo-wasm.json), compiled from its AssemblyScript source.
wasm/build/echo.wasm: wasm/echo.ts node_modules/.package-lock.json
	node_modules/.bin/asc wasm/echo.ts -O3 --runtime incremental --exportStart _start --use abort=wasm/echo/abort --stackSize 65536 -o $@

test: setup
	bash scripts/test.sh

# The crash and fuzz suites of `make test`, RELIABILITY_SCALE times longer and larger (docs/RELIABILITY.md).
RELIABILITY_SCALE ?= 8
reliability: setup
	ACHERON_RELIABILITY_SCALE=$(RELIABILITY_SCALE) bash scripts/test.sh --timeout=0 test/integration/reliability-*.test.ts

demo: setup install
	bash scripts/demo.sh

demo-ha: setup install
	bash scripts/demo-ha.sh

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
	rm -rf dist wasm/build
