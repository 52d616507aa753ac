# Canopy: build, install, run and test on a Debian 12 machine (as root).
#
#   make up     install what is needed, build, install and start Canopy here
#   make test   install what the tests need and run the whole suite

GO       ?= go
PREFIX   ?= /usr/local
BIN      := bin/canopy
# Debian packages the all-in-one and the tests use: every program a test or
# a benchmark runs comes from one of these or from Debian's required set (a
# debootstrap minbase: bash, coreutils, grep, util-linux, ...). test/arch
# (TestToolsAreInstalled) checks this list against the programs the code runs.
# busybox-static replaces busybox: the same applets, and the userland of the
# QEMU test's guest (test/e2e TestQEMUGuest), whose kernel and modules are
# linux-image-amd64's.
APT_PKGS := etcd-server etcd-client iproute2 iputils-ping traceroute iperf3 hping3 \
	busybox-static curl procps python3 linux-perf ca-certificates awscli frr \
	clang llvm libbpf-dev qemu-system-x86 linux-image-amd64 python3-openstackclient \
	tempest

.PHONY: all deps build install up test vet clean

all: build

# deps installs the Debian packages, only when one is missing (idempotent,
# and no network use when everything is there already).
deps:
	@if ! command -v $(GO) >/dev/null 2>&1; then \
		echo "Go is required (the version in go.mod)" >&2; exit 1; fi
	@missing=""; for p in $(APT_PKGS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update && apt-get install -y --no-install-recommends $$missing; \
	fi

build:
	$(GO) build -o $(BIN) ./cmd/canopy

install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/canopy

up: deps build install
	$(PREFIX)/bin/canopy up

test: deps
	$(GO) test ./... -count=1 -timeout 35m

vet:
	$(GO) vet ./...

clean:
	rm -rf bin
