# Replica: two set-up commands, `make demo` and `make test` (see README.md).
SWIFT ?= swift
RDMA_BUILD := .build-rdma

PREFIX ?= /usr/local
DESTDIR ?=
SYSTEMD_DIR ?= /etc/systemd/system
# release for an installation; the tests install their debug build (no second compile).
CONFIGURATION ?= release

.PHONY: deps build build-rdma test demo bench fuzz clean install uninstall

deps:
	@bash scripts/install-deps.sh

# Default build: no RDMA trait (what library users get).
build: deps
	$(SWIFT) build

# The RDMA trait on, in its own build folder so the two builds do not rebuild each other.
build-rdma: deps
	$(SWIFT) build --traits RDMA --scratch-path $(RDMA_BUILD)

test: build build-rdma
	@bash scripts/run-tests.sh $(RDMA_BUILD)

demo: build
	@bash scripts/demo.sh .build/debug/replctl
	@bash scripts/demo-live.sh .build/debug/replctl

bench: deps
	@command -v iperf3 >/dev/null || apt-get install -y -qq iperf3 >/dev/null
	cd Benchmarks && $(SWIFT) package --disable-sandbox benchmark --no-progress
	bash Benchmarks/replication-compare.sh
	bash Benchmarks/nbd-compare.sh

# libFuzzer on the frame decoder, the engine's handshake, authentication, NBD and the resource
# file reader, 1 000 000 inputs each (not part of `make test`, which replays the corpus).
fuzz: deps
	@bash scripts/fuzz.sh

# replctl into $(PREFIX)/bin, the systemd unit, /etc/replica.
install: deps
	$(SWIFT) build -c $(CONFIGURATION) --product replctl
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(SYSTEMD_DIR) $(DESTDIR)/etc/replica
	install -m 0755 "$$($(SWIFT) build -c $(CONFIGURATION) --show-bin-path)/replctl" $(DESTDIR)$(PREFIX)/bin/replctl
	sed 's|/usr/local/bin/replctl|$(PREFIX)/bin/replctl|g' contrib/replica.service > $(DESTDIR)$(SYSTEMD_DIR)/replica.service
	chmod 0644 $(DESTDIR)$(SYSTEMD_DIR)/replica.service

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/replctl $(DESTDIR)$(SYSTEMD_DIR)/replica.service

clean:
	rm -rf .build $(RDMA_BUILD)
