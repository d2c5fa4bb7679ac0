# epmdpxy: the daemon, the fixture library, the CLI and their tests.
# `make` builds into build/, `make check` runs every libcheck suite.

VERSION   := 0.1.0
PREFIX    ?= /usr/local
BINDIR    ?= $(PREFIX)/bin
MANDIR    ?= $(PREFIX)/share/man
DESTDIR   ?=

CC        ?= cc
CFLAGS    ?= -O2 -g
WARN      := -std=c11 -Wall -Wextra -Wshadow -Wno-unused-parameter
ifneq ($(CI),)
WARN      += -Werror
endif
ALL_CPPFLAGS := -D_GNU_SOURCE -DEPX_VERSION='"$(VERSION)"' -Iproxy -Itests $(CPPFLAGS)
ALL_CFLAGS   := $(WARN) $(CFLAGS)

B         := build
CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS   := $(shell pkg-config --libs check 2>/dev/null || echo -lcheck)

PROXY_SRCS := $(filter-out proxy/main.c,$(wildcard proxy/*.c))
PROXY_OBJS := $(PROXY_SRCS:%.c=$(B)/%.o)
TEST_SRCS  := $(wildcard tests/check_*.c)
TEST_OBJS  := $(patsubst %.c,$(B)/%.o,$(wildcard tests/*.c))
AGENT_SRCS  := $(wildcard fixture/agent/*.erl)
AGENT_BEAMS := $(AGENT_SRCS:fixture/agent/%.erl=$(B)/agent/%.beam)
SUITES     := $(patsubst tests/check_%.c,%,$(TEST_SRCS))

.PHONY: all check deps clean install
all: $(B)/epmdpxy $(AGENT_BEAMS)

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

$(B)/check_epmdpxy: $(TEST_OBJS) $(B)/libproxy.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(CHECK_LIBS) $(LDLIBS)

deps:
	@if ! sh ci/deps.sh --check >/dev/null 2>&1; then \
	    echo "make: some dependencies are missing; running ci/deps.sh"; \
	    sh ci/deps.sh; fi

# Run every suite.  CK_RUN_SUITE=<name> / CK_RUN_CASE=<name> pick one.
check: deps
	@$(MAKE) --no-print-directory all $(B)/check_epmdpxy
	EPX_EPMDPXY=$(abspath $(B)/epmdpxy) EPX_AGENT_DIR=$(abspath $(B)/agent) $(B)/check_epmdpxy

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1
	install -m 755 $(B)/epmdpxy $(DESTDIR)$(BINDIR)/epmdpxy
	install -m 644 man/epmdpxy.1 $(DESTDIR)$(MANDIR)/man1/epmdpxy.1

clean:
	rm -rf $(B)

-include $(shell find $(B) -name '*.d' 2>/dev/null)
