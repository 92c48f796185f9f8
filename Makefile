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
              $(addprefix -I,$(SHARED_DIRS)) \
              $(shell pkg-config --cflags hiredis 2>/dev/null) \
              $(shell pkg-config --cflags libmongoc-1.0 2>/dev/null)
LIBS       := -luv -lcurl -lhiredis -ljansson -ljwt -lsqlite3 -lcrypt -lcrypto -lpthread -lm \
              $(shell pkg-config --libs libmongoc-1.0 2>/dev/null || echo -lmongoc-1.0 -lbson-1.0)
ASAN       := -fsanitize=address,undefined -fno-omit-frame-pointer

# shared/ is split by layer (ARCHITECTURE.md): core, proto, domain, store
# (with sqlite/ and mongo/), api; every folder is on the include path
SHARED_DIRS := $(sort $(patsubst %/,%,$(dir $(wildcard shared/*/*.[ch] shared/*/*/*.[ch]))))
SHARED_SRC := $(sort $(wildcard shared/*/*.c shared/*/*/*.c))
SHARED_HDR := $(wildcard shared/*/*.h shared/*/*/*.h)
MOD_SRC    := $(sort $(wildcard ngx_module/*.c))
MOD_HDR    := $(wildcard ngx_module/*.h)
DAEMON_SRC := $(sort $(wildcard daemon/*.c))
DAEMON_HDR := $(wildcard daemon/*.h)
UNIT_SRC   := $(sort $(filter-out %_selftest.c, $(wildcard t/unit/*.c)))

SHARED_OBJ      := $(SHARED_SRC:%.c=$(BUILD)/obj/%.o)
SHARED_ASAN_OBJ := $(SHARED_SRC:%.c=$(BUILD)/asan/%.o)

.PHONY: all build deps deb install test-deb test-deb-in-test run test check-layers unit store-contract-mongo fuzz-smoke fuzz fuzz-api integration integration-mongo asan-integration bench bench-tickets bench-backends bench-jobs bench-fanout demo clean web FORCE

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

$(MODULE): $(BUILD)/nginx/Makefile $(SHARED_SRC) $(SHARED_HDR) $(MOD_SRC) $(MOD_HDR) \
           shared/api/openapi.json
	@$(LOCK) $(MAKE) --no-print-directory -s \
	    -f $(CURDIR)/$(BUILD)/nginx/Makefile -C $(NGX_SRC) modules
	@touch $@

# An AddressSanitizer build of the module, for `make asan-integration`.
ASAN_MODULE := $(BUILD)/asan-nginx/ngx_http_ticket_module.so

$(BUILD)/asan-nginx/Makefile: config $(BUILD)/srcs.list scripts/configure-module.sh
	@EXTRA_CC_OPT="-fsanitize=address -fno-omit-frame-pointer" \
	    EXTRA_LD_OPT="-fsanitize=address" \
	    scripts/configure-module.sh $(CURDIR) $(CURDIR)/$(BUILD)/asan-nginx

$(ASAN_MODULE): $(BUILD)/asan-nginx/Makefile $(SHARED_SRC) $(SHARED_HDR) $(MOD_SRC) $(MOD_HDR) \
                shared/api/openapi.json
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
	@$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

# Unit tests always run under AddressSanitizer + UBSan.
$(UNIT): $(UNIT_SRC:%.c=$(BUILD)/asan/%.o) $(SHARED_ASAN_OBJ) $(BUILD)/asan/daemon/conf.o
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

# ticketd's nginx.conf reader is in daemon/, not in shared/
$(BUILD)/fuzz-conf: t/fuzz/fuzz_conf.c $(BUILD)/asan/daemon/conf.o
	@echo "  LD/ASAN $@"
	@$(CC) $(CFLAGS) $(ASAN) -Idaemon -DTS_FUZZ_STANDALONE -o $@ $^

fuzz-smoke: $(BUILD)/fuzz-ws $(BUILD)/fuzz-sio $(BUILD)/fuzz-conf
	$(BUILD)/fuzz-conf $(FUZZ_RUNS)
	$(BUILD)/fuzz-ws -runs $(FUZZ_RUNS)
	$(BUILD)/fuzz-sio $(FUZZ_RUNS)

fuzz: $(SHARED_SRC)
	@command -v clang >/dev/null || { echo "fuzz needs clang (apt-get install clang)"; exit 1; }
	@mkdir -p $(BUILD)/libfuzzer
	for t in ws sio conf; do \
	    clang -g -O1 -fsanitize=fuzzer,address,undefined $(addprefix -I,$(SHARED_DIRS)) \
	        -Idaemon -o $(BUILD)/libfuzzer/fuzz_$$t t/fuzz/fuzz_$$t.c $(SHARED_SRC) daemon/conf.c \
	        $(LIBS) && \
	    $(BUILD)/libfuzzer/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) \
	        || exit 1; \
	done

# fuzz-api: the property-based API tests (t/integration/test_api_properties.py,
# which runs briefly inside `make test`) with FUZZ_API_EXAMPLES examples per
# property, on SQLite, then on MongoDB (CongoDB or TEST_MONGODB_URI).
# Hypothesis keeps failing examples in build/hypothesis and replays them first.
FUZZ_API_EXAMPLES ?= 3000

fuzz-api: build
	HYPOTHESIS_PROFILE=fuzz FUZZ_API_EXAMPLES=$(FUZZ_API_EXAMPLES) \
	    MODULE=$(CURDIR)/$(MODULE) TICKETD=$(CURDIR)/$(TICKETD) \
	    $(PYTEST) -q t/integration/test_api_properties.py
	@[ -n "$$TEST_MONGODB_URI" ] || t/mongo/setup.sh
	HYPOTHESIS_PROFILE=fuzz FUZZ_API_EXAMPLES=$(FUZZ_API_EXAMPLES) \
	    TEST_STORE=mongodb MODULE=$(CURDIR)/$(MODULE) \
	    TICKETD=$(CURDIR)/$(TICKETD) \
	    $(PYTEST) -q -rs t/integration/test_api_properties.py

# --- the two README commands ---------------------------------------------

run: deps build web
	@PORT=$(PORT) scripts/run.sh

unit: $(UNIT)
	ASAN_OPTIONS=detect_leaks=1 $(UNIT)

integration: build web
	MODULE=$(CURDIR)/$(MODULE) TICKETD=$(CURDIR)/$(TICKETD) $(PYTEST) -q t/integration

# The store/API contract suite again, on MongoDB: against CongoDB (t/mongo,
# started by the harness; the tests that need unique indexes or transactions
# are skipped there, reason printed) or, with TEST_MONGODB_URI=mongodb://...,
# a real mongod.  Backend-independent files (nginx -t, the web UI, Redis)
# run on SQLite only.
MONGO_TESTS ?= $(addprefix t/integration/,test_http.py test_auth.py \
    test_tokens.py test_users.py test_tickets.py test_comments.py \
    test_modreqs.py test_analytics.py test_jobs.py test_jobs_ai.py \
    test_jobs_mail.py test_jobs_reliability.py test_presence.py \
    test_socketio.py test_socketio_e2e.py test_daemon_link.py \
    test_original_db.py test_housekeeping.py test_data_exposure.py \
    test_socket_rights.py test_staff_only.py test_api_properties.py \
    test_metrics.py test_ticketd_conf.py test_history.py test_notes.py \
    test_accounts.py test_assignee.py test_sla.py)

# The store contract (t/unit/test_store.c, the suite SQLite runs in make
# unit) against MongoDB: a new database per test on TEST_MONGODB_URI or a
# CongoDB (which enforces no unique index: those tests skip, saying so).
store-contract-mongo: $(UNIT)
	@congo=; [ -n "$$TEST_MONGODB_URI" ] || congo=1; \
	    TEST_STORE_NO_UNIQUE=$$congo t/mongo/with-server.sh sh -c \
	    'TEST_STORE_URI="$$TEST_MONGODB_URI" ASAN_OPTIONS=detect_leaks=1 \
	     exec $(UNIT) store'

integration-mongo: build store-contract-mongo
	@[ -n "$$TEST_MONGODB_URI" ] || t/mongo/setup.sh
	TEST_STORE=mongodb MODULE=$(CURDIR)/$(MODULE) TICKETD=$(CURDIR)/$(TICKETD) \
	    $(PYTEST) -q -rs $(MONGO_TESTS)

# The include rules of ARCHITECTURE.md ("What may include what").
check-layers:
	@scripts/check-layers.py

test: deps build web check-layers unit fuzz-smoke integration integration-mongo \
      test-deb-in-test

# make test's last step: the Debian packages built, installed, driven and
# purged (make test-deb), skipped with the reason printed where it cannot
# run (not root: dpkg -i; the packages already in use on this machine)
test-deb-in-test:
	@if [ "$$(id -u)" != 0 ]; then \
	    echo "SKIPPED the install test of the Debian packages: it needs root (dpkg -i); run make test-deb as root"; \
	else \
	    $(MAKE) --no-print-directory test-deb SKIP_WHEN_INSTALLED=1; \
	fi

# --- web UI -----------------------------------------------------------------
# web/dist (served by nginx at /) is rebuilt when a source, the build config
# or the lock file changed; node_modules comes from the committed lock file.
# The browser test (t/integration/test_web_browser.py) runs with the
# integration suite.

WEB_SRC := $(shell find web/src web/public -type f 2>/dev/null) \
           web/index.html web/vite.config.js web/package.json

web: web/dist/index.html

web/node_modules/.package-lock.json: web/package-lock.json
	@command -v npm >/dev/null || { echo "the web UI needs node and npm"; exit 1; }
	cd web && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

web/dist/index.html: web/node_modules/.package-lock.json $(WEB_SRC)
	cd web && npm run --silent build -- --logLevel warn
	@touch $@

# The integration suite against the ASan-built module (nginx itself is the
# stock binary, with libasan preloaded); any report fails the test.
asan-integration: deps web $(ASAN_MODULE) $(BUILD)/ticketd-asan
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

# --- packages and installation --------------------------------------------
# deb: the Debian packages libnginx-mod-http-ticket and ticketd (debian/),
# built with Debian's tooling from a copy of the tree in build/deb/src (so
# dpkg-buildpackage's ../ and debian/'s build files stay out of the
# checkout), then checked with lintian; the .debs end up in build/deb/.
# The web UI is built first (make web): debian/rules ships web/dist.
DEB_DIR := $(BUILD)/deb

deb: deps web
	@rm -rf $(DEB_DIR) && mkdir -p $(DEB_DIR)/src/ticket
	@tar -C $(CURDIR) --exclude=./$(BUILD) --exclude=./var \
	    --exclude=./.git --exclude=node_modules --exclude=./outbox \
	    --exclude=./t/mongo/smartmongo -cf - . | tar -C $(DEB_DIR)/src/ticket -xf -
	cd $(DEB_DIR)/src/ticket && dpkg-buildpackage -us -uc -b
	@mv $(DEB_DIR)/src/*.deb $(DEB_DIR)/src/*.changes $(DEB_DIR)/src/*.buildinfo $(DEB_DIR)/
	lintian --fail-on error,warning $(DEB_DIR)/*.changes
	@ls -l $(DEB_DIR)/*.deb

# The install test: installs the two packages with dpkg, checks the files,
# runs the system nginx with the shipped site on a private port and ticketd
# as www-data, drives the API, then purges both (needs root; leaves nginx
# installed).  Not part of make test: .ci/run calls it.
test-deb: deb
	SKIP_WHEN_INSTALLED=$(SKIP_WHEN_INSTALLED) t/pkg/test_install.sh $(DEB_DIR)

# install: for systems without the Debian packages.  PREFIX and DESTDIR as
# usual; the module goes where nginx looks for modules (NGINX_MODULES), the
# unit file to SYSTEMD_UNITDIR.  The module is the one make build made,
# against Debian's nginx 1.22: on another nginx, build it against that
# nginx's source (./configure --with-compat --add-dynamic-module=<repo>).
PREFIX          ?= /usr/local
DESTDIR         ?=
SYSCONFDIR      ?= /etc
NGINX_MODULES   ?= $(PREFIX)/lib/nginx/modules
NGINX_CONF      ?= $(SYSCONFDIR)/nginx/nginx.conf
SYSTEMD_UNITDIR ?= $(PREFIX)/lib/systemd/system
TICKET_USER     ?= www-data

install: build web
	install -D -m 0755 $(TICKETD) $(DESTDIR)$(PREFIX)/sbin/ticketd
	install -D -m 0644 $(MODULE) $(DESTDIR)$(NGINX_MODULES)/ngx_http_ticket_module.so
	install -d -m 0755 $(DESTDIR)$(PREFIX)/share/ticket/web
	cp -R web/dist/. $(DESTDIR)$(PREFIX)/share/ticket/web/
	sed 's|/usr/share/ticket/web|$(PREFIX)/share/ticket/web|' conf.d/ticket.conf \
	    | install -D -m 0644 /dev/stdin $(DESTDIR)$(PREFIX)/share/ticket/examples/ticket.conf
	sed 's|^load_module modules/|load_module $(NGINX_MODULES)/|' debian/mod-http-ticket.conf \
	    | install -D -m 0644 /dev/stdin $(DESTDIR)$(PREFIX)/share/ticket/examples/mod-http-ticket.conf
	sed -e 's|/usr/sbin/ticketd|$(PREFIX)/sbin/ticketd|g' \
	    -e 's|/etc/nginx/nginx.conf|$(NGINX_CONF)|g' \
	    -e 's|www-data|$(TICKET_USER)|g' \
	    -e 's|^Documentation=.*|Documentation=file://$(PREFIX)/share/ticket/README.md|' \
	    debian/ticketd.service \
	    | install -D -m 0644 /dev/stdin $(DESTDIR)$(SYSTEMD_UNITDIR)/ticketd.service
	sed 's|www-data|$(TICKET_USER)|g' debian/ticketd.logrotate \
	    | install -D -m 0644 /dev/stdin $(DESTDIR)$(PREFIX)/share/ticket/examples/ticketd.logrotate
	install -D -m 0644 README.md $(DESTDIR)$(PREFIX)/share/ticket/README.md

# Loads a realistic demo dataset through the API into the system `make run`
# started (same PORT); re-running on a populated store is harmless.
demo:
	/usr/bin/python3 scripts/demo.py

# GET /api/tickets latency at 10k and 100k tickets (add --million by hand:
# /usr/bin/python3 t/bench/tickets_list.py --million) and create throughput.
bench-tickets: deps build
	/usr/bin/python3 t/bench/tickets_list.py

# The list page on both store backends in one run: SQLite and MongoDB
# (CongoDB, or TEST_MONGODB_URI); --tickets/--seconds/--conns to taste.
bench-backends: deps build
	MODULE=$(CURDIR)/$(MODULE) TICKETD=$(CURDIR)/$(TICKETD) \
	    /usr/bin/python3 t/bench/tickets_backends.py

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
	/usr/bin/python3 t/bench/fanout/run.py --repeat 3 --burst 200
