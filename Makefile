# pyprof's build, test and benchmark entry points. CI runs `make test`.

GO          ?= go
STATICCHECK ?= $(shell command -v staticcheck 2>/dev/null || echo $(HOME)/go/bin/staticcheck)
FUZZTIME    ?= 60s
BENCHTIME   ?= 3000x
BIN         := bin/pyprof

.PHONY: build test unit lint generate check-generate bench bench-record bench-leaks fuzz clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/pyprof

# test is what CI runs: lint, generated files, and every test (live Python
# targets included; set PYPROF_REQUIRE_PYTHONS=all to fail on a missing one).
test: lint check-generate unit

unit:
	$(GO) test -count=1 -timeout 20m ./...

lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...
	bash .ci/check-tree

generate:
	$(GO) generate ./...

# Regenerates the tables from the interpreters on this machine and fails if
# any generated file changes.
GENERATED = $(shell grep -rl --include='*.go' '^// Code generated .* DO NOT EDIT\.$$' .)
check-generate:
	@tmp=$$(mktemp -d) && for f in $(GENERATED); do mkdir -p $$tmp/$$(dirname $$f) && cp $$f $$tmp/$$f; done && \
	$(GO) generate ./... && \
	for f in $(GENERATED); do cmp -s $$f $$tmp/$$f || { echo "$$f is stale: run make generate and commit it"; exit 1; }; done; \
	rm -rf $$tmp

# Sampling cost on live targets (µs per sample, syscalls per sample).
bench:
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) -count 5 ./internal/target/ | tee bench.txt
	$(GO) run ./internal/cmd/benchsummary < bench.txt

# What recording costs CPU-bound targets and a gunicorn service and how
# exact the stacks are: pyprof's modes beside py-spy and austin (needs
# gunicorn, python3-flask and wrk from Debian; RECORDBENCH='-workloads
# hotleaf -versions 3.11 -rounds 1' for a quick run).
RECORDBENCH ?= -rounds 3 -seconds 5
bench-record: build
	$(GO) run ./internal/cmd/recordbench $(RECORDBENCH)

# What pyprof holds over long recordings (fds and RSS every minute of a
# 20-minute record of a thread-churn target and of a 15-minute record of
# gunicorn replacing its workers under wrk) and what 500 threads cost it
# beside py-spy (needs gunicorn, python3-flask and wrk from Debian;
# LEAKBENCH='-churn 3m -gunicorn-for 3m -rounds 1' for a quick run).
LEAKBENCH ?=
bench-leaks: build
	$(GO) run ./internal/cmd/leakbench $(LEAKBENCH)

# Runs every fuzz target for FUZZTIME each.
fuzz:
	$(GO) test ./pyspy -run '^$$' -fuzz '^FuzzWalk$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 0
	$(GO) test ./pyspy -run '^$$' -fuzz '^FuzzSnapshot$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 0
	$(GO) test ./pyspy -run '^$$' -fuzz '^FuzzVerify$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 0
	$(GO) test ./pyspy/pyobj -run '^$$' -fuzz '^FuzzDecoders$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 0
	$(GO) test ./pyspy/asynctask -run '^$$' -fuzz '^FuzzTasks$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 0
	$(GO) test ./pyspy/pyobj -run '^$$' -fuzz '^FuzzLineTables$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 0
	$(GO) test ./pyspy/pyobj -run '^$$' -fuzz '^FuzzDigits15$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 0
	$(GO) test ./pyspy/bytecode -run '^$$' -fuzz '^FuzzStackDepths$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 0
	$(GO) test ./pyspy/greenlet -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 0
	$(GO) test ./procmem -run '^$$' -fuzz '^FuzzParseMaps$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 0
	$(GO) test ./procmem -run '^$$' -fuzz '^FuzzParseStat$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 0
	$(GO) test ./procmem -run '^$$' -fuzz '^FuzzParseStatus$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 0
	$(GO) test ./pyversions -run '^$$' -fuzz '^FuzzDecodeDebugOffsets$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 0
	$(GO) test ./internal/proctree -run '^$$' -fuzz '^FuzzNames$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 0
	$(GO) test ./flamegraph -run '^$$' -fuzz '^FuzzWrite$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 0
	$(GO) test ./internal/pyrepr -run '^$$' -fuzz '^FuzzFloat$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 0
	$(GO) test ./internal/pyrepr -run '^$$' -fuzz '^FuzzStr$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 0
	$(GO) test ./internal/pyrepr -run '^$$' -fuzz '^FuzzBytes$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 0
	$(GO) test ./internal/pyrepr -run '^$$' -fuzz '^FuzzInt$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 0
	$(GO) test ./internal/cli -run '^$$' -fuzz '^FuzzNumericFlags$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 0

clean:
	rm -rf bin bench.txt
