# cfi-sh: the README's two commands are `make demo` and `make test`.
# Both install what a fresh Debian 12 machine needs, build, and clean up after themselves.

SWIFT ?= swift
BUILD_FLAGS ?=
CFI_SH = .build/debug/cfi-sh

.PHONY: all deps build test unit-test demo bench bench-fleet fuzz fuzz-corpus clean static install uninstall deb

all: build

# Debian packages the build, the tests and the demo lab need (skipped when present).
deps:
	scripts/lab deps

build:
	$(SWIFT) build $(BUILD_FLAGS)

# Unit, golden, interpreter and command-line tests, then the fleet tests, which start their
# own test hosts (scripts/lab) and tear them down. Three runs: the fleet tests block the
# cooperative pool's threads (two on two cores) while their cfi-sh and lab commands run,
# which would starve async work beside them: the unit tests', and that of the fleet tests
# that drive an SSHTransport in-process (TransportFleetTests), run last on their own. There,
# each process swift-subprocess starts (an ssh master, an rsync) waited minutes for a thread
# to finish in (a conformance run took 370-470 s instead of 3.5 s), long enough for a master
# opened but not yet used to end idle.
# The fleet tests install the Debian package on a host: a debug build of it (see `deb`).
IN_PROCESS_FLEET_TESTS = TransportFleetTests
test: deps build
	$(MAKE) deb CONFIGURATION=debug
	$(SWIFT) test $(BUILD_FLAGS) --skip FleetTests
	$(SWIFT) test $(BUILD_FLAGS) --filter FleetTests --skip $(IN_PROCESS_FLEET_TESTS)
	$(SWIFT) test $(BUILD_FLAGS) --filter $(IN_PROCESS_FLEET_TESTS)

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

# Installing: cfi-sh linked with the Swift runtime inside (--static-swift-stdlib: it runs
# where no Swift is installed), its man pages, shell completions, systemd units (disabled) and
# docs. `make install PREFIX=/usr/local DESTDIR=` for machines without dpkg; `make deb`
# writes .build/deb/cfi-sh_VERSION_ARCH.deb (see packaging/README.md). CONFIGURATION=debug
# builds the same from a debug build: faster, for the tests. The static build has a build
# directory of its own: its modules are compiled against the static Swift libraries, and
# SwiftPM would not rebuild the other build's objects when only that flag changes. `-z now`:
# full RELRO, as Debian's hardening flags link (lintian's hardening-no-bindnow).
CONFIGURATION ?= release
PREFIX ?= /usr/local
DESTDIR ?=
STATIC_CFI_SH = .build/static/$(CONFIGURATION)/cfi-sh

static:
	$(SWIFT) build -c $(CONFIGURATION) --static-swift-stdlib --product cfi-sh --scratch-path .build/static \
		-Xlinker -z -Xlinker now

install: static
	$(MAKE) man completions CFI_SH_BIN=$(STATIC_CFI_SH)
	BINARY=$(STATIC_CFI_SH) PREFIX=$(PREFIX) DESTDIR=$(DESTDIR) scripts/package/tree install

uninstall:
	PREFIX=$(PREFIX) DESTDIR=$(DESTDIR) scripts/package/tree uninstall

deb: static
	scripts/package/build-deb deps
	$(MAKE) man completions CFI_SH_BIN=$(STATIC_CFI_SH)
	scripts/package/build-deb $(STATIC_CFI_SH)

clean:
	rm -rf .build
