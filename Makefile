# Riffle's build and test entry points. `make test` is what CI runs (.ci/run) and what the
# README tells users to run: vet, then every unit and integration test with -race against a real
# Apache Kafka broker (KAFKA_BROKERS if set, else one started from Maven Central jars).

GO      ?= go
KAFKA   := tools/kafka/kafka.sh
PKGS    ?= ./...
# Integration suites (real Kafka, subprocesses, fault injection) need more than go test's default.
TIMEOUT ?= 30m

export RIFFLE_KAFKA_RUN ?= $(or $(TMPDIR),/tmp)/riffle-kafka/make

.PHONY: all test test-faults-long test-unit vet fmt-check kafka-fetch kafka-up kafka-down kafka-cluster-up example

all: test

## test: vet, then all tests with -race against real Kafka (started here unless KAFKA_BROKERS is set)
# Result lines of suites whose figures matter even when they pass (the fault suite) are appended
# to REPORT and printed at the end.
REPORT  ?= $(or $(TMPDIR),/tmp)/riffle-test-report.txt

# The broker gets a run dir of its own (with-kafka.sh's default), not kafka-up's: a broker left
# running by `make kafka-up` made `make test` stop at once ("already has running nodes").
test: vet
	@rm -f $(REPORT)
	@env -u RIFFLE_KAFKA_RUN RIFFLE_REPORT=$(REPORT) tools/kafka/with-kafka.sh $(GO) test -race -timeout $(TIMEOUT) $(PKGS); rc=$$?; \
	if [ -s $(REPORT) ]; then echo "== results"; cat $(REPORT); fi; exit $$rc

## test-faults-long: the long fault suite (300k records, 40 kills, 3 broker bounces per guarantee)
test-faults-long:
	RIFFLE_FAULT_LONG=1 RIFFLE_REPORT=$(REPORT) $(GO) test -timeout 90m -run 'TestFault' -v ./integration

## test-unit: the fast tests only (go test -short): tests that need a real broker skip
test-unit: vet
	$(GO) test -race -short $(PKGS)

vet: fmt-check
	$(GO) vet $(PKGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

## kafka-fetch: resolve the Kafka jars from Maven Central into the cache (done by the others too)
kafka-fetch:
	$(KAFKA) fetch

## kafka-up: start one broker and print its address; use it with KAFKA_BROKERS=<address>
kafka-up:
	$(KAFKA) start

## kafka-cluster-up: start a 3-node cluster (RF 3, min ISR 2) in its own run dir
kafka-cluster-up:
	RIFFLE_KAFKA_RUN=$(RIFFLE_KAFKA_RUN)-cluster $(KAFKA) start-cluster

## kafka-down: stop what kafka-up and kafka-cluster-up started
kafka-down:
	$(KAFKA) stop
	RIFFLE_KAFKA_RUN=$(RIFFLE_KAFKA_RUN)-cluster $(KAFKA) stop

# ---------------------------------------------------------------------------------------------------
# Benchmarks: Riffle vs Kafka Streams vs the bare franz-go loop on one broker (bench/README.md).
# benchrun starts its own broker (unless KAFKA_BROKERS is set) and builds every system it runs.

.PHONY: bench bench-smoke

## bench: the full benchmark, about 15 minutes; writes bench/RESULTS.md, bench/results/ and bench/results.png
bench:
	$(GO) run ./bench/cmd/benchrun

## bench-smoke: a tiny end-to-end check of the benchmark harness (Riffle, the bare loop and Kafka Streams, q0 and count)
bench-smoke:
	$(GO) run ./bench/cmd/benchrun -smoke

# ---------------------------------------------------------------------------------------------------
# Restore benchmark: Riffle's changelog restore into Pebble vs a bare franz-go read of the same topic.

.PHONY: bench-restore

## bench-restore: 1M keys, 100-byte values, 4 partitions, 5 runs each; writes bench/RESTORE.md and bench/results/restore.json
bench-restore:
	$(GO) run ./bench/cmd/restorebench

.PHONY: bench-eos

## bench-eos: Riffle exactly-once vs at-least-once at 100 ms and 1 s commit intervals (count, q0; 3 reps), ~10 minutes; writes bench/EOS.md and bench/results/eos/
bench-eos:
	$(GO) run ./bench/cmd/benchrun -eos
