# cfi-sh: the README's two commands are `make demo` and `make test`.
# Both install what a fresh Debian 12 machine needs, build, and clean up after themselves.

SWIFT ?= swift
BUILD_FLAGS ?=
CFI_SH = .build/debug/cfi-sh

.PHONY: all deps build test unit-test demo bench bench-fleet fuzz fuzz-corpus clean

all: build

# Debian packages the build, the tests and the demo lab need (skipped when present).
deps:
	scripts/lab deps

build:
	$(SWIFT) build $(BUILD_FLAGS)

# Unit, golden, interpreter and command-line tests, then the fleet tests, which start their
# own test hosts (scripts/lab) and tear them down. Two runs: the fleet tests block threads
# while they wait for hosts, which would starve the unit tests' async work on 2 cores.
test: deps build
	$(SWIFT) test $(BUILD_FLAGS) --skip FleetTests
	$(SWIFT) test $(BUILD_FLAGS) --filter FleetTests

# Only the tests that need no test hosts.
unit-test: build
	$(SWIFT) test $(BUILD_FLAGS) --skip FleetTests

# A demo lab of 6 hosts in groups lab and office, and runbooks/demo.cfi run on it.
demo: deps build
	scripts/demo

# Man pages (.build/man/man1/cfi-sh*.1, .build/man/man5/cfi-sh-language.5) and shell
# completion scripts (.build/completions/: cfi-sh.bash, _cfi-sh, cfi-sh.fish), generated from
# the command line of CFI_SH_BIN (default: the debug build) and docs/language.md.
CFI_SH_BIN ?= $(CFI_SH)
CFI_SH_BIN_NEEDS = $(if $(filter $(CFI_SH),$(CFI_SH_BIN)),build)
.PHONY: man completions

man: $(CFI_SH_BIN_NEEDS)
	SWIFT=$(SWIFT) scripts/generate/man-pages $(CFI_SH_BIN) .build/man

completions: $(CFI_SH_BIN_NEEDS)
	scripts/generate/completions $(CFI_SH_BIN) .build/completions

# Benchmarks (not tests): see bench/README.md.
bench:
	$(SWIFT) build -c release --product cfi-bench-parse
	.build/release/cfi-bench-parse

# cfi-sh against pdsh, ClusterShell, parallel-ssh and Ansible on one lab (about 10 minutes).
bench-fleet: deps
	bench/fleet/run 50

# libFuzzer over the front end (lexer, parser, includes, resolver, printer) for FUZZ_SECONDS
# (default 30 minutes); not part of test or CI. See Fuzz/README.md.
FUZZ_SECONDS ?= 1800
fuzz:
	SWIFT=$(SWIFT) Fuzz/run fuzz $(FUZZ_SECONDS)

# The corpus grown by make fuzz, minimized into Tests/CFIScriptTests/FuzzInputs/corpus (which swift test replays).
fuzz-corpus:
	SWIFT=$(SWIFT) Fuzz/run merge

clean:
	rm -rf .build
