# `make bench`: epmdpxy measured against direct EPMD (bench/bench.c says
# what each figure is).  Included from the top Makefile; uses its B, CC,
# ALL_CPPFLAGS, ALL_CFLAGS, LDFLAGS, LDLIBS, $(B)/libepx.a and the agent.
#   make bench                  every section, BENCH_RUNS=5 runs each
#   make bench BENCH_RUNS=1     a quick try
#   make bench BENCH_ONLY=rpc,bulk   (rpc bulk partition links start)
# The report is printed and written to $(B)/bench.txt.

BENCH_RUNS  ?= 5
BENCH_SRCS  := $(wildcard bench/*.c)
BENCH_OBJS  := $(BENCH_SRCS:%.c=$(B)/%.o)
BENCH_BEAMS := $(patsubst bench/%.erl,$(B)/bench/%.beam,$(wildcard bench/*.erl))

.PHONY: bench
# The bench's Erlang half, loaded into every node with -pa $(B)/bench.
$(B)/bench/%.beam: bench/%.erl
	@mkdir -p $(dir $@)
	erlc -Werror -o $(B)/bench $<

$(B)/epx-bench: $(BENCH_OBJS) $(B)/libepx.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $(BENCH_OBJS) $(B)/libepx.a -lm $(LDLIBS)

bench: deps
	@$(MAKE) -f $(firstword $(MAKEFILE_LIST)) --no-print-directory all $(B)/epx-bench $(BENCH_BEAMS)
	BENCH_RUNS=$(BENCH_RUNS) EPX_EPMDPXY=$(abspath $(B)/epmdpxy) \
	  EPX_AGENT_DIR=$(abspath $(B)/agent) EPX_PRELOAD=$(abspath $(B)/libepx_preload.so) \
	  $(B)/epx-bench --beam-dir $(abspath $(B)/bench) --out $(B)/bench.txt
