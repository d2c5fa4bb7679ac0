# `make netsplit`: issue 10's reference.  Every scenario of the issue's table
# on a real partition (network namespaces + iptables, root only) and through
# epmdpxy in hold mode; prints a side-by-side table (also in
# $(B)/netsplit/table.md) and writes every measurement to
# $(B)/netsplit/results.jsonl.  tests/netsplit/netsplit.sh says what it builds
# and cleans; tests/netsplit/epx_netsplit.erl what it measures and compares.
# Included from the top Makefile; uses its B, `all` and `deps`.
#   make netsplit                          strict: exits 1 when any row differs
#   make netsplit NETSPLIT_KNOWN=tests/netsplit/known-differences
#                                          rows listed there may differ (reported)
#   make netsplit NETSPLIT_REPEAT=3        more runs per row (medians, ranges)
#   make netsplit NETSPLIT_ROWS=blip-1.5,cut-3.3    some rows only
#   make netsplit NETSPLIT_BACKENDS=epmdpxy          the daemon's side alone (no root)
#   make netsplit NETSPLIT_HOLD="held_rcvbuf=4096"   knobs for the daemon's MODE hold
#   make netsplit NETSPLIT_RETRY=0         no second run for a differing row
#   make netsplit NETSPLIT_CUT=network     cut in a router namespace between the
#                                          nodes (FORWARD), not in n1's own (the default, host)
#   make netsplit-compare                  compare the last results again
# `make check` runs it too, with the known differences, when CI is set or
# NETSPLIT_IN_CHECK=1 (NETSPLIT_IN_CHECK=0 turns it off); without root it
# says SKIP.

NETSPLIT_REPEAT   ?= 1
NETSPLIT_KNOWN    ?=
NETSPLIT_ROWS     ?= all
NETSPLIT_BACKENDS ?= real,epmdpxy
NETSPLIT_HOLD     ?=
NETSPLIT_RETRY    ?= 1
NETSPLIT_CUT      ?= host
NETSPLIT_IN_CHECK ?= $(if $(CI),1,0)
NETSPLIT_BEAMS    := $(B)/netsplit/epx_netsplit.beam
NETSPLIT_RUN       = NETSPLIT_OUT=$(abspath $(B)/netsplit) NETSPLIT_BEAMS=$(abspath $(B)/netsplit) \
	NETSPLIT_REPEAT=$(NETSPLIT_REPEAT) NETSPLIT_ROWS=$(NETSPLIT_ROWS) \
	NETSPLIT_BACKENDS=$(NETSPLIT_BACKENDS) NETSPLIT_KNOWN=$(1) NETSPLIT_HOLD="$(NETSPLIT_HOLD)" NETSPLIT_RETRY=$(NETSPLIT_RETRY) NETSPLIT_CUT=$(NETSPLIT_CUT) \
	EPX_EPMDPXY=$(abspath $(B)/epmdpxy) EPX_AGENT_DIR=$(abspath $(B)/agent) \
	sh tests/netsplit/netsplit.sh

.PHONY: netsplit netsplit-build netsplit-compare netsplit-check
$(B)/netsplit/%.beam: tests/netsplit/%.erl
	@mkdir -p $(dir $@)
	erlc -Werror -o $(B)/netsplit $<

netsplit-build: all $(NETSPLIT_BEAMS)

netsplit: deps
	@$(MAKE) -f $(firstword $(MAKEFILE_LIST)) --no-print-directory netsplit-build
	$(call NETSPLIT_RUN,$(NETSPLIT_KNOWN))

netsplit-compare: $(NETSPLIT_BEAMS)
	NETSPLIT_OUT=$(abspath $(B)/netsplit) NETSPLIT_KNOWN=$(NETSPLIT_KNOWN) \
	  erl -noshell -pa $(B)/netsplit -run epx_netsplit compare_main

# In `make check`: today's known differences are reported, not failed.
check: netsplit-check
netsplit-check: deps
ifeq ($(NETSPLIT_IN_CHECK),1)
	@$(MAKE) -f $(firstword $(MAKEFILE_LIST)) --no-print-directory netsplit-build
	$(call NETSPLIT_RUN,$(abspath tests/netsplit/known-differences))
else
	@echo "netsplit: not run by make check here (CI unset; NETSPLIT_IN_CHECK=1 runs it)"
endif
