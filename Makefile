# epmdpxy: the daemon, the fixture library, the CLI and their tests.
# `make` builds into build/, `make check` runs every libcheck suite.

VERSION   := 0.1.0
PREFIX    ?= /usr/local
BINDIR    ?= $(PREFIX)/bin
LIBDIR    ?= $(PREFIX)/lib
INCDIR    ?= $(PREFIX)/include
MANDIR    ?= $(PREFIX)/share/man
AGENTDIR  ?= $(LIBDIR)/epx/agent
DESTDIR   ?=

CC        ?= cc
CFLAGS    ?= -O2 -g
WARN      := -std=c11 -Wall -Wextra -Wshadow -Wno-unused-parameter
ifneq ($(CI),)
WARN      += -Werror
endif
ALL_CPPFLAGS := -D_GNU_SOURCE -DEPX_VERSION='"$(VERSION)"' -Iproxy -Ifixture -Itests $(CPPFLAGS)
ALL_CFLAGS   := $(WARN) $(CFLAGS)

B         := build
CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS   := $(shell pkg-config --libs check 2>/dev/null || echo -lcheck)
CURL_LIBS    := $(shell pkg-config --libs libcurl 2>/dev/null || echo -lcurl)

PROXY_SRCS := $(filter-out proxy/main.c,$(wildcard proxy/*.c))
PROXY_OBJS := $(PROXY_SRCS:%.c=$(B)/%.o) $(B)/gen/dashboard_html.o
# libepx: the fixture library, plus the daemon's pure modules it shares
# (name matching).  PIC objects; only epx_fixture_* is exported from the .so.
LIB_SRCS   := $(filter-out fixture/preload.c,$(wildcard fixture/*.c)) proxy/rules.c proxy/sbuf.c proxy/epmd_codec.c
LIB_OBJS   := $(LIB_SRCS:%.c=$(B)/pic/%.o)
PRELOADDIR ?= $(LIBDIR)/epx
LIB_PATHS  := -DEPX_BINDIR='"$(BINDIR)"' -DEPX_AGENTDIR='"$(AGENTDIR)"' -DEPX_BUILDDIR='"$(abspath $(B))"' \
              -DEPX_PRELOADDIR='"$(PRELOADDIR)"'
SONAME     := libepx.so.0
CLI_SRCS   := $(wildcard fixture/cli/*.c)
CLI_OBJS   := $(CLI_SRCS:%.c=$(B)/%.o)
TEST_SRCS  := $(wildcard tests/check_*.c)
TEST_OBJS  := $(patsubst %.c,$(B)/%.o,$(wildcard tests/*.c))
AGENT_SRCS  := $(wildcard fixture/agent/*.erl)
AGENT_BEAMS := $(AGENT_SRCS:fixture/agent/%.erl=$(B)/agent/%.beam)
SUITES     := $(patsubst tests/check_%.c,%,$(TEST_SRCS))

.PHONY: all check deps demo clean install uninstall FORCE
all: $(B)/epmdpxy $(B)/libepx.a $(B)/libepx.so $(B)/epx-cluster $(B)/libepx_preload.so $(AGENT_BEAMS)

# The Erlang agent that test nodes run over stdin/stdout.
$(B)/agent/%.beam: fixture/agent/%.erl
	@mkdir -p $(dir $@)
	erlc -Werror -o $(B)/agent $<

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(B)/tests/%.o: tests/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CPPFLAGS) -I$(B)/tests $(CHECK_CFLAGS) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

# The library has the install paths compiled in: rebuild it when they change.
$(B)/paths.stamp: FORCE
	@mkdir -p $(B)
	@echo '$(LIB_PATHS)' | cmp -s - $@ || echo '$(LIB_PATHS)' > $@
FORCE:

$(B)/pic/%.o: %.c $(B)/paths.stamp
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CPPFLAGS) $(LIB_PATHS) $(ALL_CFLAGS) -fPIC -fvisibility=hidden -MMD -MP -c -o $@ $<

$(B)/libepx.a: $(LIB_OBJS)
	rm -f $@ && ar rcs $@ $^

$(B)/libepx.so: $(LIB_OBJS)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -shared -Wl,-soname,$(SONAME) -o $@ $^ $(LDLIBS)

# The LD_PRELOAD shim (README: the LD_PRELOAD shim): on its own, libc and libdl only.
$(B)/libepx_preload.so: $(B)/pic/fixture/preload.o
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -shared -o $@ $^ -ldl -lpthread

$(B)/epx-cluster: $(CLI_OBJS) $(B)/libepx.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $(CLI_OBJS) $(B)/libepx.a $(LDLIBS)

# The dashboard page (GET / on the control port) compiled in as bytes, with
# od rather than xxd: coreutils is everywhere.
$(B)/gen/dashboard_html.c: proxy/dashboard.html
	@mkdir -p $(dir $@)
	@{ echo '/* generated from proxy/dashboard.html by the Makefile */'; \
	  echo '#include <stddef.h>'; \
	  echo 'const unsigned char dashboard_html[] = {'; \
	  od -An -v -tx1 $< | sed 's/ \([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	  echo '0 };'; \
	  echo 'const size_t dashboard_html_len = sizeof dashboard_html - 1;'; } > $@.tmp && mv $@.tmp $@
$(B)/gen/dashboard_html.o: $(B)/gen/dashboard_html.c
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

$(B)/libproxy.a: $(PROXY_OBJS)
	rm -f $@ && ar rcs $@ $^

$(B)/epmdpxy: $(B)/proxy/main.o $(B)/libproxy.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The runner's suite list is generated from the file names: tests/check_foo.c
# defines `Suite *foo_suite(void)`.
$(B)/tests/suites.inc: $(TEST_SRCS) Makefile
	@mkdir -p $(dir $@)
	@printf '%s\n' $(foreach s,$(SUITES),'SUITE($(s))') > $@.tmp && mv $@.tmp $@
$(B)/tests/runner.o: $(B)/tests/suites.inc

# epx-cluster's modules that check_cli unit-tests (no main, no I/O loop)
CLI_UNIT_OBJS := $(addprefix $(B)/fixture/cli/,view.o snap.o json.o self.o)
# Helpers of the preload suite: a C member (run under the shim) and the
# Erlang module the nodes use; the runner finds them beside itself.
TEST_TOOLS := $(B)/tests/tools/epx_apptool $(B)/tests/tools/epx_apptest.beam
$(B)/tests/tools/epx_apptool: tests/tools/apptool.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< -lpthread
$(B)/tests/tools/epx_apptest.beam: tests/erl/epx_apptest.erl
	@mkdir -p $(dir $@)
	erlc -Werror -o $(dir $@) $<

$(B)/check_epmdpxy: $(TEST_OBJS) $(CLI_UNIT_OBJS) $(B)/libepx.a $(B)/libproxy.a | $(TEST_TOOLS)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $(TEST_OBJS) $(CLI_UNIT_OBJS) $(B)/libepx.a $(B)/libproxy.a $(CHECK_LIBS) $(CURL_LIBS) $(LDLIBS)

# The README's first command: a live five-node cluster from the build tree.
demo: deps
	@$(MAKE) --no-print-directory all
	@echo "make demo: epx-cluster is in $(abspath $(B)); to run it by name from another shell:"
	@echo "  export PATH=$(abspath $(B)):\$$PATH"
	EPX_EPMDPXY=$(abspath $(B)/epmdpxy) EPX_AGENT_DIR=$(abspath $(B)/agent) $(B)/epx-cluster up 5

deps:
	@if ! sh ci/deps.sh --check >/dev/null 2>&1; then \
	    echo "make: some dependencies are missing; running ci/deps.sh"; \
	    sh ci/deps.sh; fi

# Run every suite.  CK_RUN_SUITE=<name> / CK_RUN_CASE=<name> pick one.
# The logs of daemons that did not end cleanly stay in $(B)/test-logs.
check: deps
	@$(MAKE) --no-print-directory all $(B)/check_epmdpxy
	@rm -rf $(B)/test-logs && mkdir -p $(B)/test-logs
	EPX_EPMDPXY=$(abspath $(B)/epmdpxy) EPX_AGENT_DIR=$(abspath $(B)/agent) \
	  EPX_CLUSTER=$(abspath $(B)/epx-cluster) EPX_PRELOAD=$(abspath $(B)/libepx_preload.so) \
	  EPX_TEST_LOGDIR=$(abspath $(B)/test-logs) $(B)/check_epmdpxy

$(B)/epx.pc: Makefile
	@mkdir -p $(B)
	printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$(LIBDIR)' 'includedir=$(INCDIR)' '' \
	  'Name: epx' \
	  'Description: start, split and heal clusters of real Erlang nodes in C tests' \
	  'Version: $(VERSION)' 'Libs: -L$${libdir} -lepx' 'Cflags: -I$${includedir}' > $@

install: all $(B)/epx.pc
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCDIR) \
	  $(DESTDIR)$(AGENTDIR) $(DESTDIR)$(PRELOADDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3
	install -m 755 $(B)/libepx_preload.so $(DESTDIR)$(PRELOADDIR)/libepx_preload.so
	install -m 755 $(B)/epmdpxy $(B)/epx-cluster $(DESTDIR)$(BINDIR)/
	install -m 644 $(B)/libepx.a $(DESTDIR)$(LIBDIR)/libepx.a
	install -m 755 $(B)/libepx.so $(DESTDIR)$(LIBDIR)/libepx.so.$(VERSION)
	ln -sf libepx.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libepx.so
	install -m 644 fixture/epx_fixture.h fixture/epx_check.h $(DESTDIR)$(INCDIR)/
	install -m 644 $(B)/epx.pc $(DESTDIR)$(LIBDIR)/pkgconfig/epx.pc
	install -m 644 $(AGENT_BEAMS) $(DESTDIR)$(AGENTDIR)/
	install -m 644 man/epmdpxy.1 man/epx-cluster.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 644 man/epx_fixture.3 $(DESTDIR)$(MANDIR)/man3/
	if [ -z "$(DESTDIR)" ] && command -v ldconfig >/dev/null && [ "$$(id -u)" = 0 ]; then ldconfig; fi

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/epmdpxy $(DESTDIR)$(BINDIR)/epx-cluster $(DESTDIR)$(LIBDIR)/libepx.a \
	  $(DESTDIR)$(LIBDIR)/libepx.so $(DESTDIR)$(LIBDIR)/$(SONAME) \
	  $(DESTDIR)$(LIBDIR)/libepx.so.$(VERSION) $(DESTDIR)$(LIBDIR)/pkgconfig/epx.pc \
	  $(DESTDIR)$(INCDIR)/epx_fixture.h $(DESTDIR)$(INCDIR)/epx_check.h \
	  $(DESTDIR)$(MANDIR)/man1/epmdpxy.1 $(DESTDIR)$(MANDIR)/man1/epx-cluster.1 \
	  $(DESTDIR)$(MANDIR)/man3/epx_fixture.3
	rm -f $(DESTDIR)$(PRELOADDIR)/libepx_preload.so
	rm -rf $(DESTDIR)$(AGENTDIR)

clean:
	rm -rf $(B)

include mk/bench.mk
include mk/quality.mk
include mk/soak.mk
include mk/erlang.mk
include mk/netsplit.mk

-include $(shell find $(B) -name '*.d' 2>/dev/null)
