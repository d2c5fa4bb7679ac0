# Reliability checks: fuzzing, the sanitizer build and valgrind.
# Included from the top Makefile (`include mk/quality.mk`); uses its B,
# ALL_CPPFLAGS, ALL_CFLAGS, LDFLAGS, PROXY_SRCS, SUITES, `all`, `deps` and
# $(B)/check_epmdpxy, and runs the suites as `make check` does.
#
#   make fuzz         every tests/fuzz/fuzz_*.c for FUZZ_SECONDS (60) each
#   make fuzz-short   the same for 15 s each (CI)
#   make sanitize     daemon, libepx, the shim and the check runner with
#                     ASan+UBSan in $(B)/san; the whole suite against the
#                     sanitized daemon, the preload suite's C members
#                     (epx_apptool, ASan-linked) under the sanitized shim
#   make valgrind     the suites that start a daemon, with the daemon under
#                     valgrind memcheck
#
# Needs clang and libclang-rt-14-dev (fuzz) and valgrind (valgrind).

.PHONY: fuzz fuzz-short fuzz-build sanitize sanitize-build valgrind

# The makefile that included this one, for the recursive calls below.
QUALITY_TOP := $(firstword $(MAKEFILE_LIST))
QUALITY_MAKE = $(MAKE) --no-print-directory -f $(QUALITY_TOP)

# ---- fuzzing (libFuzzer, clang only) ----------------------------------
# The targets are linked against the proxy sources compiled again with
# clang and coverage instrumentation ($(B)/fuzz/libproxy.a), not against
# $(B)/libproxy.a, which the normal compiler built without it.

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS  := $(filter-out -O%,$(ALL_CFLAGS)) -O1 -g $(FUZZ_SAN)
# Per-input time limit: an input that keeps a parser busy this long is a bug.
FUZZ_TIMEOUT ?= 10
FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS    := $(FUZZ_TARGETS:%=$(B)/fuzz/fuzz_%)
FUZZ_OBJS    := $(PROXY_SRCS:%.c=$(B)/fuzz/obj/%.o)

$(B)/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(ALL_CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<

$(B)/fuzz/libproxy.a: $(FUZZ_OBJS)
	rm -f $@ && ar rcs $@ $^

$(B)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_util.h $(B)/fuzz/libproxy.a
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(ALL_CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer -MMD -MP -o $@ $< $(B)/fuzz/libproxy.a

fuzz-build: $(FUZZ_BINS)

# Each target runs with a scratch corpus under $(B)/fuzz/corpus/<target>
# (seeded from tests/fuzz/corpus/<target>; what the fuzzer finds stays
# there between runs) and leaves crash inputs in $(B)/fuzz/artifacts/.
# Any crash, leak, sanitizer report, invariant failure or timeout fails.
fuzz: $(FUZZ_BINS)
	@FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_TIMEOUT=$(FUZZ_TIMEOUT) \
	  sh tests/tools/run-fuzz.sh $(B)/fuzz $(FUZZ_TARGETS)

fuzz-short:
	@$(QUALITY_MAKE) fuzz FUZZ_SECONDS=15

# ---- ASan + UBSan build of everything, whole suite -----------------------
# The nodes (erl, no ASan runtime) run under the plain shim, $(B)'s; the
# sanitized one, $(SAN_B)'s (instrumented, the runtime left to the
# executable), goes only into the ASan-linked C members of the preload
# suite ($$EPX_SAN_PRELOAD, tests/check_preload.c spawn_tool).
# A second build of the daemon, libepx and the runner with the sanitizers,
# made by this Makefile with B=$(B)/san.  Every report (from the runner, its
# forked test processes or any daemon it starts, including LeakSanitizer at
# their exit) is written to $(B)/san/reports/ instead of a stderr that may
# be a daemon's log file; the target fails if any report appears, and
# prints them.

SAN_B       := $(B)/san
# clang by default: its UBSan shares ASan's runtime and so honours log_path;
# gcc's libubsan ignores it and reports only on the (daemon's) stderr.
SAN_CC      ?= clang
SAN_FLAGS   := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
# Warnings stay on but do not fail here: with the instrumentation compilers
# warn where the normal build does not (gcc 12: -Wformat-truncation in
# fixture/epx_fixture.c log_tail, a false positive).
SAN_CFLAGS  ?= -O1 -g -Wno-error
SAN_REPORTS := $(abspath $(SAN_B))/reports
SAN_ENV     := ASAN_OPTIONS=log_path=$(SAN_REPORTS)/asan:abort_on_error=1:halt_on_error=1:detect_leaks=1:strict_init_order=1:detect_stack_use_after_return=1 \
               UBSAN_OPTIONS=log_path=$(SAN_REPORTS)/ubsan:print_stacktrace=1:halt_on_error=1:abort_on_error=1 \
               LSAN_OPTIONS=log_path=$(SAN_REPORTS)/lsan

# A change of compiler or flags starts the sanitized tree afresh.
SAN_STAMP   := $(SAN_CC) $(SAN_CFLAGS) $(SAN_FLAGS) $(LDFLAGS)
sanitize-build:
	@if [ -d $(SAN_B) ] && ! echo '$(SAN_STAMP)' | cmp -s - $(SAN_B)/flags.stamp; then \
	  echo "sanitize: compiler or flags changed: rebuilding $(SAN_B)"; rm -rf $(SAN_B); fi
	@mkdir -p $(SAN_B) && echo '$(SAN_STAMP)' > $(SAN_B)/flags.stamp
	@$(QUALITY_MAKE) B=$(SAN_B) CC=$(SAN_CC) CFLAGS='$(SAN_CFLAGS) $(SAN_FLAGS)' \
	  LDFLAGS='$(SAN_FLAGS) $(LDFLAGS)' all $(SAN_B)/check_epmdpxy

sanitize: deps
	@$(QUALITY_MAKE) all
	@$(QUALITY_MAKE) sanitize-build
	@rm -rf $(SAN_REPORTS) $(SAN_B)/test-logs && mkdir -p $(SAN_REPORTS) $(SAN_B)/test-logs
	@echo "sanitize: whole suite against $(SAN_B)/epmdpxy (reports in $(SAN_REPORTS))"
	@rc=0; $(SAN_ENV) EPX_EPMDPXY=$(abspath $(SAN_B)/epmdpxy) \
	  EPX_AGENT_DIR=$(abspath $(B)/agent) EPX_CLUSTER=$(abspath $(SAN_B)/epx-cluster) \
	  EPX_PRELOAD=$(abspath $(B)/libepx_preload.so) \
	  EPX_SAN_PRELOAD=$(abspath $(SAN_B)/libepx_preload.so) \
	  EPX_TEST_LOGDIR=$(abspath $(SAN_B)/test-logs) $(SAN_B)/check_epmdpxy || rc=$$?; \
	  sh tests/tools/san-reports.sh $(SAN_REPORTS) || rc=1; \
	  exit $$rc

# ---- valgrind memcheck of the daemon --------------------------------------
# The suites that start a daemon run with EPX_EPMDPXY pointing at a wrapper
# that execs the normal daemon under valgrind; the target fails if a suite
# fails or any valgrind log shows an error or a definite/indirect leak.

VG_B        := $(B)/valgrind
VG_LOGS     := $(abspath $(VG_B))/logs
VALGRIND    ?= valgrind
# the suites that start a daemon (SUITES comes from the top Makefile)
VALGRIND_SUITES ?= $(filter relay control dist robust partition fixture hostile \
                     epmd_interop cli cli_cluster,$(SUITES))

valgrind: deps
	@$(QUALITY_MAKE) all $(B)/check_epmdpxy
	@rm -rf $(VG_B) && mkdir -p $(VG_LOGS) $(VG_B)/test-logs
	@printf '%s\n' '#!/bin/sh' \
	  '# epmdpxy under valgrind memcheck (made by mk/quality.mk); one log per' \
	  '# process in $$EPX_VALGRIND_LOGS (default $(VG_LOGS))' \
	  'logs=$${EPX_VALGRIND_LOGS:-$(VG_LOGS)}' \
	  'mkdir -p "$$logs"' \
	  'exec $(VALGRIND) --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect --track-origins=yes --log-file="$$logs/%p.log" $(abspath $(B)/epmdpxy) "$$@"' \
	  > $(VG_B)/epmdpxy && chmod +x $(VG_B)/epmdpxy
	@rc=0; for s in $(VALGRIND_SUITES); do \
	  echo "valgrind: suite $$s"; \
	  CK_RUN_SUITE=$$s EPX_VALGRIND=1 EPX_VALGRIND_LOGS=$(VG_LOGS)/$$s \
	    EPX_EPMDPXY=$(abspath $(VG_B)/epmdpxy) EPX_AGENT_DIR=$(abspath $(B)/agent) \
	    EPX_CLUSTER=$(abspath $(B)/epx-cluster) EPX_TEST_LOGDIR=$(abspath $(VG_B))/test-logs \
	    $(B)/check_epmdpxy || rc=1; \
	done; \
	sh tests/tools/vg-logs.sh $(VG_LOGS) || rc=1; \
	exit $$rc
