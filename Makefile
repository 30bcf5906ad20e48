# dicomgcs — build, test, demo.  `make help` lists the targets.
.DEFAULT_GOAL := build
SHELL := /bin/bash

CC          ?= cc
LUA         ?= lua5.4
LUA_CFLAGS   = $(shell pkg-config --cflags lua5.4 2>/dev/null)
DEP_LIBS     = $(shell pkg-config --libs libcurl libcrypto 2>/dev/null || echo -lcurl -lcrypto) -lm -pthread
WARN        := -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wcast-qual -Wstrict-prototypes -Wmissing-prototypes
CFLAGS      ?= -O2 -g
ALL_CFLAGS   = -std=c99 -D_POSIX_C_SOURCE=200809L -pthread -fPIC -fvisibility=hidden $(WARN) $(LUA_CFLAGS) $(CFLAGS)
BUILD       ?= build

CORE_SRC    := $(wildcard csrc/dg_*.c)
BIND_SRC    := $(wildcard csrc/ldg_*.c)
CORE_OBJ    := $(CORE_SRC:csrc/%.c=$(BUILD)/obj/%.o)
BIND_OBJ    := $(BIND_SRC:csrc/%.c=$(BUILD)/obj/%.o)
CTEST_SRC   := $(wildcard spec/c/test_*.c)
CTEST_BIN   := $(CTEST_SRC:spec/c/%.c=$(BUILD)/ctest/%)
CORE_SO     := $(BUILD)/dicomgcs/core.so
FUZZ_TARGETS := $(patsubst fuzz/fuzz_%.c,%,$(wildcard fuzz/fuzz_*.c))
FUZZ_REPLAY := $(FUZZ_TARGETS:%=$(BUILD)/fuzz/replay_%)

# Run Lua from the source tree. LUA_PATH_5_4 beats LUA_PATH in 5.4, so set that one.
export LUA_PATH_5_4  := $(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;;
export LUA_CPATH_5_4 := $(CURDIR)/$(BUILD)/?.so;;

.PHONY: help build deps emulator-deps test demo sanitize bench fuzz lint docs clean soak

help:
	@echo "make deps       install Debian packages and the emulator's npm packages"
	@echo "make build      build the C core ($(CORE_SO))"
	@echo "make test       build everything and run every test (closing line: N passed, N failed)"
	@echo "make demo       install, start the emulator, run examples/import_export.lua, stop it"
	@echo "make sanitize   run the specs against an ASan/UBSan build of the C core"
	@echo "make bench      run the benchmarks; figures go to bench/RESULTS.md"
	@echo "make soak       5,000 files through the pipeline under faults and an emulator restart (SOAK_FILES=N)"
	@echo "make fuzz       run the libFuzzer harnesses (FUZZ_SECONDS per target, default 60)"
	@echo "make lint       luacheck the Lua sources"
	@echo "make embed      build build/dicomgcs_host, a C program embedding Lua and dicomgcs"
	@echo "make docs       HTML API reference in doc/ (LDoc) and the man page man/dicomgcs.1"

build: $(CORE_SO)

$(BUILD)/obj/%.o: csrc/%.c $(wildcard csrc/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# Never link liblua into the module: the host's interpreter provides it.
$(CORE_SO): $(CORE_OBJ) $(BIND_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ $^ $(DEP_LIBS) $(LDFLAGS)

$(BUILD)/ctest/%: spec/c/%.c $(CORE_OBJ) $(wildcard spec/c/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Icsrc -o $@ $< $(CORE_OBJ) $(DEP_LIBS) $(LDFLAGS)

# The fuzz corpora (every former crash among them) replayed without libFuzzer, in `make test`.
$(BUILD)/fuzz/replay_%: fuzz/fuzz_%.c fuzz/standalone_runner.c csrc/dg_dicom.c csrc/dg_multipart.c $(wildcard csrc/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Icsrc -o $@ fuzz/standalone_runner.c $< csrc/dg_dicom.c csrc/dg_multipart.c

ctest: $(CTEST_BIN) $(FUZZ_REPLAY)

deps:
	@scripts/install-deps

emulator-deps:
	@scripts/install-deps --emulator-only

test: deps build ctest
	@scripts/run-tests

demo: deps build
	@scripts/demo

sanitize:
	@scripts/sanitize

bench: deps build
	@scripts/bench

SOAK_FILES ?= 5000
soak: deps build
	@scripts/soak $(SOAK_FILES)

fuzz:
	@scripts/fuzz

lint:
	luacheck --no-color lua bin/dicomgcs $$(find spec examples -name '*.lua') scripts/gen-rockspec scripts/gen-man scripts/soak.lua

docs:
	@scripts/install-deps --debian-only
	ldoc -c config.ld .
	scripts/gen-man

include examples/embed/embed.mk

clean:
	rm -rf $(BUILD)
