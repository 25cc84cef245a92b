# pyprof's build, test and benchmark entry points. CI runs `make test`.

GO          ?= go
STATICCHECK ?= $(shell command -v staticcheck 2>/dev/null || echo $(HOME)/go/bin/staticcheck)
FUZZTIME    ?= 60s
BENCHTIME   ?= 3000x
BIN         := bin/pyprof

.PHONY: build test unit lint generate check-generate bench fuzz clean

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

generate:
	$(GO) generate ./...

# Regenerates the tables from the interpreters on this machine and fails if
# the committed ones differ.
check-generate: generate
	@git diff --exit-code -- '*.go' || (echo "generated files are stale: run make generate and commit"; exit 1)

# Sampling cost on live targets (µs per sample, syscalls per sample).
bench:
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) -count 5 ./internal/target/ | tee bench.txt
	$(GO) run ./internal/cmd/benchsummary < bench.txt

# Runs every fuzz target for FUZZTIME each.
fuzz:
	$(GO) test ./pyspy -run '^$$' -fuzz '^FuzzDecoders$$' -fuzztime $(FUZZTIME)
	$(GO) test ./pyspy -run '^$$' -fuzz '^FuzzSnapshot$$' -fuzztime $(FUZZTIME)
	$(GO) test ./pyspy -run '^$$' -fuzz '^FuzzLineTables$$' -fuzztime $(FUZZTIME)
	$(GO) test ./procmem -run '^$$' -fuzz '^FuzzParseMaps$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/pyrepr -run '^$$' -fuzz '^FuzzFloat$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/pyrepr -run '^$$' -fuzz '^FuzzStr$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/pyrepr -run '^$$' -fuzz '^FuzzBytes$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/pyrepr -run '^$$' -fuzz '^FuzzInt$$' -fuzztime $(FUZZTIME)

clean:
	rm -rf bin bench.txt
