# Sanad — build, run, test. `make help` lists the targets.
# Dependencies are Debian packages installed by scripts/deps.sh; nothing is vendored.

VERSION := 0.1.0
BUILD   ?= build
BIN     ?= sanad
CC      ?= cc
PKGS    := sqlite3 libmicrohttpd jansson libsodium icu-uc icu-i18n libzstd libcurl

OPT       ?= -O2
CFLAGS    ?= $(OPT) -g
WARNINGS  := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes \
             -Wpointer-arith -Wno-missing-field-initializers
CPPFLAGS  += -Isrc -I$(BUILD) -D_GNU_SOURCE -DSANAD_VERSION='"$(VERSION)"'
ALLCFLAGS  = -std=c11 $(WARNINGS) $(CFLAGS) $(EXTRA_CFLAGS) $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS    += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lcsv -lpthread -lm
LDFLAGS   += $(EXTRA_LDFLAGS)

LIB_SRC := $(sort $(wildcard src/core/*.c src/store/*.c src/services/*.c src/http/*.c src/cmd/*.c))
LIB_OBJ := $(LIB_SRC:src/%.c=$(BUILD)/%.o) $(BUILD)/assets.o $(BUILD)/datafiles.o
WEB     := $(sort $(shell find web -type f ! -name '.*'))
DATA_FILES := $(sort $(shell find share -type f ! -name '.*' ! -name '*.md'))
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all run test check fuzz bench deps test-deps clean help unit

all: deps $(BIN)

help:
	@echo "make            build ./sanad"
	@echo "make run        install deps, build, create ./data on first run (prints the admin password), serve on 127.0.0.1:8080"
	@echo "                DATA=dir LISTEN=host:port change where; DEMO=N adds N demo patients to a new node"
	@echo "make test       build and run the whole test suite (unit + integration)"
	@echo "make check      the whole test suite under ASan + UBSan"
	@echo "make fuzz       build the libFuzzer targets with clang and run each briefly (FUZZ_SECONDS=20)"
	@echo "make bench      run the benchmarks and print their figures"

deps:
	@scripts/deps.sh build

test-deps:
	@scripts/deps.sh test

$(BIN): $(BUILD)/main.o $(LIB_OBJ)
	@echo "  LD  $@"
	@$(CC) $(ALLCFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: src/%.c | $(BUILD)
	@mkdir -p $(dir $@)
	@echo "  CC  $<"
	@$(CC) $(CPPFLAGS) $(ALLCFLAGS) -MMD -c -o $@ $<

$(BUILD)/tools/embed: tools/embed.c | $(BUILD)
	@mkdir -p $(dir $@)
	$(CC) -O1 -Wall -Wextra -o $@ $<

$(BUILD)/assets.c: $(BUILD)/tools/embed $(WEB)
	$(BUILD)/tools/embed $@ web $(WEB)

$(BUILD)/assets.o: $(BUILD)/assets.c
	$(CC) $(CPPFLAGS) $(ALLCFLAGS) -c -o $@ $<

$(BUILD)/datafiles.c: $(BUILD)/tools/embed $(DATA_FILES)
	$(BUILD)/tools/embed -t data_files data_file_find $@ share $(DATA_FILES)

$(BUILD)/datafiles.o: $(BUILD)/datafiles.c src/core/datafiles.h
	$(CC) $(CPPFLAGS) $(ALLCFLAGS) -c -o $@ $<

$(BUILD):
	@mkdir -p $(BUILD)

# ---- tests ----
$(BUILD)/tests/%: tests/unit/%.c $(LIB_OBJ) tests/unit/testutil.h
	@mkdir -p $(dir $@)
	@echo "  LD  $@"
	@$(CC) $(CPPFLAGS) -Itests/unit $(ALLCFLAGS) $(LDFLAGS) -o $@ $< $(LIB_OBJ) $(LDLIBS) -lcmocka

unit: $(UNIT_BIN)

test: test-deps $(BIN) $(UNIT_BIN)
	@SANAD_BIN=$(abspath $(BIN)) UNIT_DIR=$(abspath $(BUILD)/tests) tests/run.sh

SAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
check: test-deps
	@$(MAKE) --no-print-directory BUILD=build-san BIN=build-san/sanad CFLAGS="$(SAN_FLAGS)" \
	    EXTRA_LDFLAGS="-fsanitize=address,undefined" build-san/sanad unit
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    SANAD_BIN=$(abspath build-san/sanad) UNIT_DIR=$(abspath build-san/tests) SANAD_SANITIZED=1 tests/run.sh

# ---- fuzzing (clang + libFuzzer) ----
FUZZ_SECONDS ?= 20
FUZZ_SRC := $(sort $(wildcard fuzz/fuzz_*.c))
FUZZ_BIN := $(FUZZ_SRC:fuzz/%.c=build-fuzz/%)
FUZZ_FLAGS := -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer

# clang-only -Wformat-nonliteral findings (src/core/log.c, src/http/server.c) stay warnings here so they
# cannot block fuzzing; gcc builds keep -Werror for them.
FUZZ_WFLAGS := -Wno-error=format-nonliteral

# the library is always brought up to date (phony) so a target never fuzzes stale code
.PHONY: fuzz-lib
fuzz-lib:
	@$(MAKE) --no-print-directory BUILD=build-fuzz CC=clang CFLAGS="$(FUZZ_FLAGS)" EXTRA_CFLAGS="$(FUZZ_WFLAGS)" \
	    build-fuzz/libsanad.a

build-fuzz/fuzz_%: fuzz/fuzz_%.c fuzz-lib
	clang $(CPPFLAGS:-I$(BUILD)=-Ibuild-fuzz) -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined \
	    $(shell pkg-config --cflags $(PKGS)) -o $@ $< build-fuzz/libsanad.a $(LDLIBS)

$(BUILD)/libsanad.a: $(LIB_OBJ)
	ar rcs $@ $^

fuzz: test-deps $(FUZZ_BIN)
	@for f in $(FUZZ_BIN); do \
	    name=$$(basename $$f); mkdir -p build-fuzz/corpus/$$name; \
	    echo "fuzz: $$name for $(FUZZ_SECONDS)s"; \
	    $$f -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -timeout=10 \
	        build-fuzz/corpus/$$name fuzz/corpus/$$name >build-fuzz/$$name.log 2>&1 \
	        || { tail -40 build-fuzz/$$name.log; exit 1; }; \
	    tail -1 build-fuzz/$$name.log; \
	done

bench: $(BIN)
	@scripts/deps.sh bench
	@SANAD_BIN=$(abspath $(BIN)) bench/run.sh

# ---- running ----
DATA   ?= ./data
LISTEN ?= 127.0.0.1:8080
DEMO   ?=
run: all
	@if [ ! -e "$(DATA)/sanad.db" ]; then ./$(BIN) init --data "$(DATA)" && \
	    if [ -n "$(DEMO)" ]; then ./$(BIN) demo --data "$(DATA)" --patients "$(DEMO)"; fi; fi
	./$(BIN) serve --data "$(DATA)" --listen "$(LISTEN)"

clean:
	rm -rf build build-san build-fuzz $(BIN)

-include $(LIB_OBJ:.o=.d) $(BUILD)/main.d
