# MicroSentinel: thin wrapper over CMake, as C projects conventionally have.
#   make demo      install what is missing, build, run the main job
#   make check     install what is missing, build, run every test
#   make bench     benchmarks (SPEC §9)        make accuracy   attribution accuracy suite
#   make check-sanitize   ASan+UBSan build (build-asan): unit + fuzz corpora + an integration subset
BUILD ?= build
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo
JOBS ?= 2
# Sanitizer run (docs/BUILD.md). Leaks: LeakSanitizer is on for unit tests and corpus replays; the
# daemons driven by integration tests run with detect_leaks=0 (gRPC and nng keep process-lifetime
# allocations that are not ours) and test_leaks checks our leaks with valgrind and a documented
# suppression file instead. The integration subset covers the agent (BPF and synthetic, its API,
# mode controller, symbolizer), the coordinator, msctl, gRPC and nng over TLS, the spool and the
# security tests (about 4 min under ASan; the ClickHouse and fault suites are left to the
# normal build: they are the slow part of the suite and exercise the same C paths).
ASAN_BUILD ?= build-asan
SAN_COMMON = halt_on_error=1:abort_on_error=0:detect_stack_use_after_return=0:check_initialization_order=1
SAN_ENV = UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
SAN_ITESTS ?= test_lifecycle|test_api_badinput|test_api_guide|test_mode_controller|test_symbolizer|test_grpc_api|test_grpc_tls|test_fleet_push|test_fleet_badinput|test_fleet_tls|test_fleet_spool|test_privdrop|test_secrets|test_listen_policy|test_metrics_prometheus|test_leaks

.PHONY: all deps configure build check check-sanitize unit demo bench accuracy clean

all: build

deps:
	@bash deploy/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD) $(CMAKE_FLAGS) > /dev/null

build: configure
	@cmake --build $(BUILD) -j$(JOBS)

check: build
	@cd $(BUILD) && ctest --output-on-failure --timeout 900
	@$(MAKE) --no-print-directory check-sanitize

check-sanitize: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMS_SANITIZE=ON > /dev/null
	@cmake --build $(ASAN_BUILD) -j$(JOBS)
	@cd $(ASAN_BUILD) && $(SAN_ENV) ASAN_OPTIONS=$(SAN_COMMON):detect_leaks=1 \
		ctest --output-on-failure --timeout 600 -L 'unit|fuzz'
	@cd $(ASAN_BUILD) && $(SAN_ENV) ASAN_OPTIONS=$(SAN_COMMON):detect_leaks=0 \
		ctest --output-on-failure --timeout 900 -R 'integration\.($(SAN_ITESTS))$$'

unit: build
	@cd $(BUILD) && ctest --output-on-failure -L 'unit|fuzz'

demo: build
	@bash deploy/demo.sh $(BUILD)

bench: build
	@bash tests/bench/run.sh $(BUILD)

accuracy: build
	@bash tests/accuracy/run.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
