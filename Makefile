# Replica: two set-up commands, `make demo` and `make test` (see README.md).
SWIFT ?= swift
RDMA_BUILD := .build-rdma

.PHONY: deps build build-rdma test demo bench clean

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

clean:
	rm -rf .build $(RDMA_BUILD)
