# minivmm build.  `make` builds ./minivmm; `make check` installs what it needs and runs every test;
# `make demo` boots a guest; `make bench` measures minivmm against its peers.
#
# Every .c file under the source folders is part of the program; vmm/main.c holds main() and is left
# out of test binaries.  Tests are discovered by name: tests/<group>/test_*.c are cmocka programs linked
# with all program objects (built with sanitizers), tests/<group>/test_*.sh are shell tests.

CC      ?= gcc
# ccache, where installed, makes rebuilds of several worktrees cheap; the build does not need it.
CCACHE  := $(shell command -v ccache 2>/dev/null)
PKGS    := liburing zlib libzstd json-c libseccomp
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -I. \
           -fno-strict-aliasing -pthread -MMD -MP
NPROC   := $(shell nproc 2>/dev/null || echo 2)
LDLIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -luring -lz -lzstd -ljson-c -lseccomp) -pthread
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer

SRC_DIRS := $(wildcard vmm cpu memory devices storage net tools lib)
SRCS     := $(sort $(shell find $(SRC_DIRS) -name '*.c'))
MAIN_SRC := vmm/main.c
LIB_SRCS := $(filter-out $(MAIN_SRC),$(SRCS))

REL_OBJS := $(SRCS:%.c=build/rel/%.o)
SAN_OBJS := $(LIB_SRCS:%.c=build/san/%.o)

TEST_SRCS := $(sort $(wildcard tests/*/test_*.c))
TEST_BINS := $(TEST_SRCS:%.c=build/san/%)
# Helpers linked into every test binary (tests/lib holds no test_*.c, so it is not a test group).
TLIB_SRCS := $(sort $(wildcard tests/lib/*.c))
TLIB_OBJS := $(TLIB_SRCS:%.c=build/san/%.o)

.PHONY: all clean deps unit check e2e demo bench format tests harness-selftest fuzz
# Keep the sanitizer objects between runs (they are prerequisites of pattern rules only).
.SECONDARY:
all: minivmm

# Link lines name every object: show them only with V=1.
Q := $(if $(V),,@)

minivmm: $(REL_OBJS)
	@echo "  LINK    $@"
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

build/rel/%.o: %.c
	@mkdir -p $(dir $@)
	$(CCACHE) $(CC) $(CFLAGS) -c -o $@ $<

build/san/%.o: %.c
	@mkdir -p $(dir $@)
	$(CCACHE) $(CC) $(CFLAGS) $(SAN) -c -o $@ $<

# Every program object is linked in: format drivers, verbs and controllers register themselves
# from constructors, which an archive would leave out.
build/san/tests/%: tests/%.c $(SAN_OBJS) $(TLIB_OBJS)
	@mkdir -p $(dir $@)
	@echo "  LINK    $@"
	$(Q)$(CCACHE) $(CC) $(CFLAGS) $(SAN) -o $@ $< $(SAN_OBJS) $(TLIB_OBJS) $(LDLIBS) -lcmocka

tests: $(TEST_BINS)

# Fuzz targets (tests/fuzz/fuzz_*.c): clang's libFuzzer, with every program object built again by
# clang with coverage and ASan/UBSan.  `make fuzz` builds them; scripts/run-fuzz.sh runs them.
FUZZ_CC    := $(shell command -v clang-14 2>/dev/null || echo clang)
FUZZ_SAN   := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_FLAGS := $(filter-out -O2,$(CFLAGS)) -O1 -Wno-gnu-variable-sized-type-not-at-end $(FUZZ_SAN)
FUZZ_SRCS  := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS  := $(FUZZ_SRCS:tests/fuzz/%.c=build/fuzz/%)
FUZZ_OBJS  := $(LIB_SRCS:%.c=build/fuzzobj/%.o) $(TLIB_SRCS:%.c=build/fuzzobj/%.o)

build/fuzzobj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CCACHE) $(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

build/fuzz/%: tests/fuzz/%.c $(FUZZ_OBJS)
	@mkdir -p $(dir $@)
	@echo "  LINK    $@"
	$(Q)$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJS) $(LDLIBS) -lcmocka

fuzz: $(FUZZ_BINS)

# Host-side bench of the disk completion path (bench/completion_loop.c; numbers in README).
build/completion-loop: bench/completion_loop.c $(filter-out build/rel/vmm/main.o,$(REL_OBJS))
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# Installs the Debian packages the build, the tests and the nested-KVM harness need (idempotent).
deps:
	scripts/install-deps.sh

# Unit, device and storage tests: everything that needs no KVM.
unit:
	$(MAKE) -j$(NPROC) minivmm tests
	scripts/run-tests.sh unit

# End-to-end: real Linux guests under minivmm (through nested KVM when the host has no /dev/kvm).
e2e:
	$(MAKE) -j$(NPROC) minivmm
	scripts/run-tests.sh e2e

# The nested harness's own test: level 1s crashed, frozen and locked up on purpose are stopped and
# their test rerun (also part of `make e2e` and `make check`).
harness-selftest:
	guest-tests/selftest/run.sh

# README command 2: the whole suite (first: layers point down, scripts/check-layers.sh).
check: deps
	scripts/check-layers.sh
	$(MAKE) -j$(NPROC) minivmm tests fuzz
	scripts/run-tests.sh all

# README command 1: boot a guest to a shell.
demo: deps
	$(MAKE) -j$(NPROC) minivmm
	guest-tests/demo.sh

bench: deps
	$(MAKE) -j$(NPROC) minivmm
	bench/run-all.sh

format:
	clang-format -i $(SRCS) $(shell find $(SRC_DIRS) tests -name '*.h') $(TEST_SRCS) $(TLIB_SRCS)

clean:
	rm -rf build minivmm

-include $(REL_OBJS:.o=.d) $(SAN_OBJS:.o=.d) $(TLIB_OBJS:.o=.d) $(FUZZ_OBJS:.o=.d)
