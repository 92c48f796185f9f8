# Entry points: deps, build, run, test, demo, bench (see README.md).
#
# The nginx module is built with Debian's own recipe against
# /usr/share/nginx/src (scripts/configure-module.sh); configure runs only when
# `config` or the set of source files changes, afterwards `make` only
# recompiles what changed.  ticketd and the unit tests link the same shared/
# sources compiled here with our own warning flags.

SHELL      := /bin/bash
BUILD      ?= build
NGX_SRC    := /usr/share/nginx/src
MODULE     := $(BUILD)/nginx/ngx_http_ticket_module.so
TICKETD    := $(BUILD)/ticketd
UNIT       := $(BUILD)/unit-tests
PYTEST     ?= /usr/bin/pytest
PORT       ?= 8080

CC         ?= gcc
WARN       := -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow \
              -Wpointer-arith -Wformat=2 -Werror=format-security
CFLAGS     ?= -g -O2
CFLAGS     += -std=gnu11 $(WARN) -D_FILE_OFFSET_BITS=64 -fstack-protector-strong \
              -Ishared $(shell pkg-config --cflags hiredis 2>/dev/null)
LIBS       := -luv -lcurl -lhiredis -ljansson -ljwt -lsqlite3 -lcrypt -lcrypto -lpthread -lm
ASAN       := -fsanitize=address,undefined -fno-omit-frame-pointer

SHARED_SRC := $(sort $(wildcard shared/*.c))
SHARED_HDR := $(wildcard shared/*.h)
MOD_SRC    := $(sort $(wildcard ngx_module/*.c))
MOD_HDR    := $(wildcard ngx_module/*.h)
DAEMON_SRC := $(sort $(wildcard daemon/*.c))
DAEMON_HDR := $(wildcard daemon/*.h)
UNIT_SRC   := $(sort $(filter-out %_selftest.c, $(wildcard t/unit/*.c)))

SHARED_OBJ      := $(SHARED_SRC:%.c=$(BUILD)/obj/%.o)
SHARED_ASAN_OBJ := $(SHARED_SRC:%.c=$(BUILD)/asan/%.o)

.PHONY: all build deps run test unit fuzz-smoke fuzz integration asan-integration bench bench-tickets bench-jobs bench-fanout demo clean FORCE

all: build
build: $(MODULE) $(TICKETD)

deps:
	@scripts/deps.sh

# --- nginx module ---------------------------------------------------------

# Holds the list of module sources; rewritten only when the list changes,
# so adding or removing a file re-runs configure and editing one does not.
$(BUILD)/srcs.list: FORCE
	@mkdir -p $(BUILD)
	@echo '$(SHARED_SRC) $(MOD_SRC)' | cmp -s - $@ \
	    || echo '$(SHARED_SRC) $(MOD_SRC)' > $@

# flock: two builds at once (a test run and an editor, say) must not
# configure or compile into the same folder together.
LOCK := flock $(BUILD)/.lock

$(BUILD)/nginx/Makefile: config $(BUILD)/srcs.list scripts/configure-module.sh
	@$(LOCK) scripts/configure-module.sh $(CURDIR) $(CURDIR)/$(BUILD)/nginx

$(MODULE): $(BUILD)/nginx/Makefile $(SHARED_SRC) $(SHARED_HDR) $(MOD_SRC) $(MOD_HDR)
	@$(LOCK) $(MAKE) --no-print-directory -s \
	    -f $(CURDIR)/$(BUILD)/nginx/Makefile -C $(NGX_SRC) modules
	@touch $@

# An AddressSanitizer build of the module, for `make asan-integration`.
ASAN_MODULE := $(BUILD)/asan-nginx/ngx_http_ticket_module.so

$(BUILD)/asan-nginx/Makefile: config $(BUILD)/srcs.list scripts/configure-module.sh
	@EXTRA_CC_OPT="-fsanitize=address -fno-omit-frame-pointer" \
	    EXTRA_LD_OPT="-fsanitize=address" \
	    scripts/configure-module.sh $(CURDIR) $(CURDIR)/$(BUILD)/asan-nginx

$(ASAN_MODULE): $(BUILD)/asan-nginx/Makefile $(SHARED_SRC) $(SHARED_HDR) $(MOD_SRC) $(MOD_HDR)
	@$(MAKE) --no-print-directory -s -f $(CURDIR)/$(BUILD)/asan-nginx/Makefile \
	    -C $(NGX_SRC) modules
	@touch $@

# --- ticketd and the shared library ---------------------------------------

$(BUILD)/obj/%.o: %.c $(SHARED_HDR) $(DAEMON_HDR)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CFLAGS) -Idaemon -c -o $@ $<

$(BUILD)/asan/%.o: %.c $(SHARED_HDR) $(DAEMON_HDR)
	@mkdir -p $(dir $@)
	@echo "  CC/ASAN $<"
	@$(CC) $(CFLAGS) $(ASAN) -Idaemon -c -o $@ $<

$(TICKETD): $(DAEMON_SRC:%.c=$(BUILD)/obj/%.o) $(SHARED_OBJ)
	@echo "  LD      $@"
	@$(CC) $(CFLAGS) -o $@ $^ $(LIBS)

# Unit tests always run under AddressSanitizer + UBSan.
$(UNIT): $(UNIT_SRC:%.c=$(BUILD)/asan/%.o) $(SHARED_ASAN_OBJ)
	@echo "  LD/ASAN $@"
	@$(CC) $(CFLAGS) $(ASAN) -o $@ $^ -lcmocka $(LIBS)

# --- fuzzing ----------------------------------------------------------------
# fuzz-smoke (part of `make test`): the fuzz targets' standalone drivers,
# ASan+UBSan, a bounded number of random inputs.  fuzz: libFuzzer (clang)
# for FUZZ_SECONDS each, run by hand.

FUZZ_RUNS    ?= 100000
FUZZ_SECONDS ?= 300

$(BUILD)/fuzz-%: t/fuzz/fuzz_%.c $(SHARED_ASAN_OBJ)
	@echo "  LD/ASAN $@"
	@$(CC) $(CFLAGS) $(ASAN) -DTS_FUZZ_STANDALONE -o $@ $^ $(LIBS)

fuzz-smoke: $(BUILD)/fuzz-ws $(BUILD)/fuzz-sio
	$(BUILD)/fuzz-ws -runs $(FUZZ_RUNS)
	$(BUILD)/fuzz-sio $(FUZZ_RUNS)

fuzz: $(SHARED_SRC)
	@command -v clang >/dev/null || { echo "fuzz needs clang (apt-get install clang)"; exit 1; }
	@mkdir -p $(BUILD)/libfuzzer
	for t in ws sio; do \
	    clang -g -O1 -fsanitize=fuzzer,address,undefined -Ishared \
	        -o $(BUILD)/libfuzzer/fuzz_$$t t/fuzz/fuzz_$$t.c $(SHARED_SRC) \
	        $(LIBS) && \
	    $(BUILD)/libfuzzer/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) \
	        || exit 1; \
	done

# --- the two README commands ---------------------------------------------

run: deps build
	@PORT=$(PORT) scripts/run.sh

unit: $(UNIT)
	ASAN_OPTIONS=detect_leaks=1 $(UNIT)

integration: build
	$(PYTEST) -q t/integration

test: deps build unit fuzz-smoke integration

# The integration suite against the ASan-built module (nginx itself is the
# stock binary, with libasan preloaded); any report fails the test.
asan-integration: deps $(ASAN_MODULE) $(BUILD)/ticketd-asan
	MODULE=$(CURDIR)/$(ASAN_MODULE) TICKETD=$(CURDIR)/$(BUILD)/ticketd-asan \
	    NGINX_LD_PRELOAD=$$(gcc -print-file-name=libasan.so) \
	    ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
	    $(PYTEST) -q t/integration

$(BUILD)/ticketd-asan: $(DAEMON_SRC:%.c=$(BUILD)/asan/%.o) $(SHARED_ASAN_OBJ)
	@echo "  LD/ASAN $@"
	@$(CC) $(CFLAGS) $(ASAN) -o $@ $^ $(LIBS)

bench: deps build
	/usr/bin/python3 t/bench/login_health.py

clean:
	rm -rf $(BUILD)

# Loads a realistic demo dataset through the API into the system `make run`
# started (same PORT); re-running on a populated store is harmless.
demo:
	/usr/bin/python3 scripts/demo.py

# GET /api/tickets latency at 10k and 100k tickets (add --million by hand:
# /usr/bin/python3 t/bench/tickets_list.py --million) and create throughput.
bench-tickets: deps build
	/usr/bin/python3 t/bench/tickets_list.py

# The job runner under a backlog: 2000 tickets triaged through the Gemini
# fake (500 ms per call) and assigned; throughput vs --ai-concurrency / 0.5 s
# and ticketd's RSS (a fast check: /usr/bin/python3 t/bench/jobs_backlog.py --quick).
bench-jobs: deps build
	/usr/bin/python3 t/bench/jobs_backlog.py

# Fan-out of one event to 1000 and 5000 sockets in one room: this module vs
# Debian's nchan and a Node socket.io 4.8 server, same generator (a fast
# check: /usr/bin/python3 t/bench/fanout/run.py --quick).
bench-fanout: deps build
	@[ -d t/bench/fanout/node_modules ] || (cd t/bench/fanout && npm ci --no-audit --no-fund)
	@[ -f /usr/lib/nginx/modules/ngx_nchan_module.so ] || \
	    (apt-get install -y libnginx-mod-nchan || sudo apt-get install -y libnginx-mod-nchan)
	/usr/bin/python3 t/bench/fanout/run.py
