# `make soak`: a bounded soak test of the daemon and libepx under random
# partitions (soak/soak.c says what it does and checks).  Included from the
# top Makefile (`include mk/soak.mk`); uses its B, CC, ALL_CPPFLAGS,
# ALL_CFLAGS, LDFLAGS, LDLIBS, $(B)/libepx.a, the agent and `deps`.
#   make soak                   SOAK_SECONDS=180 of cuts (plus start-up and drain)
#   make soak SOAK_SECONDS=60   a shorter run
#   SOAK_SEED=N make soak       the same sequence of cuts again (timing varies)
#   make soak SOAK_EPMDPXY=$(B)/san/epmdpxy SOAK_RSS_SLACK_KIB=1000000
#                               soak the sanitizer build of the daemon
# Exits non-zero if a check failed.

SOAK_SECONDS ?= 180
SOAK_EPMDPXY ?= $(B)/epmdpxy
SOAK_SRCS    := $(wildcard soak/*.c)
# bench/benchutil.c: process tracking, signal clean-up and /proc figures
SOAK_OBJS    := $(SOAK_SRCS:%.c=$(B)/%.o) $(B)/bench/benchutil.o
SOAK_BEAMS   := $(patsubst soak/%.erl,$(B)/soak/%.beam,$(wildcard soak/*.erl))
SOAK_TOP     := $(firstword $(MAKEFILE_LIST))

.PHONY: soak soak-build
# The soak's Erlang half, loaded into every node with -pa $(B)/soak.
$(B)/soak/%.beam: soak/%.erl
	@mkdir -p $(dir $@)
	erlc -Werror -o $(B)/soak $<

$(B)/epx-soak: $(SOAK_OBJS) $(B)/libepx.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $(SOAK_OBJS) $(B)/libepx.a $(LDLIBS)

soak-build: all $(B)/epx-soak $(SOAK_BEAMS)

soak: deps
	@$(MAKE) -f $(SOAK_TOP) --no-print-directory soak-build
	SOAK_SECONDS=$(SOAK_SECONDS) EPX_EPMDPXY=$(abspath $(SOAK_EPMDPXY)) \
	  EPX_AGENT_DIR=$(abspath $(B)/agent) \
	  $(B)/epx-soak --beam-dir $(abspath $(B)/soak)
