# MicroSentinel: thin wrapper over CMake, as C projects conventionally have.
#   make demo      install what is missing, build, run the main job
#   make check     install what is missing, build, run every test
#   make bench     benchmarks (SPEC §9)        make accuracy   attribution accuracy suite
BUILD ?= build
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo
JOBS ?= 2

.PHONY: all deps configure build check unit demo bench accuracy clean

all: build

deps:
	@bash deploy/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD) $(CMAKE_FLAGS) > /dev/null

build: configure
	@cmake --build $(BUILD) -j$(JOBS)

check: build
	@cd $(BUILD) && ctest --output-on-failure --timeout 900

unit: build
	@cd $(BUILD) && ctest --output-on-failure -L 'unit|fuzz'

demo: build
	@bash deploy/demo.sh $(BUILD)

bench: build
	@bash tests/bench/run.sh $(BUILD)

accuracy: build
	@bash tests/accuracy/run.sh $(BUILD)

clean:
	rm -rf $(BUILD)
