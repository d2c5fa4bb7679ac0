#!/bin/sh
# Run libFuzzer targets one after the other: run-fuzz.sh BUILDDIR TARGET...
# Each BUILDDIR/fuzz_TARGET runs for $FUZZ_SECONDS (default 60) with the
# scratch corpus BUILDDIR/corpus/TARGET, seeded from tests/fuzz/corpus/TARGET
# (so nothing is written into the source tree), the dictionary
# tests/fuzz/fuzz_TARGET.dict if there is one, and a per-input limit of
# $FUZZ_TIMEOUT seconds.  Crash inputs land in BUILDDIR/artifacts/TARGET/.
# Exits 1 if any target found anything (crash, leak, sanitizer report,
# failed invariant, timeout, out of memory).
set -u
dir=$1
shift
secs=${FUZZ_SECONDS:-60}
tmo=${FUZZ_TIMEOUT:-10}
fail=0
for t in "$@"; do
    corpus=$dir/corpus/$t
    art=$dir/artifacts/$t
    log=$dir/$t.log
    mkdir -p "$corpus" "$art"
    if [ -d "tests/fuzz/corpus/$t" ]; then
        cp tests/fuzz/corpus/"$t"/* "$corpus"/ 2>/dev/null
    fi
    set --
    [ -f "tests/fuzz/fuzz_$t.dict" ] && set -- "-dict=tests/fuzz/fuzz_$t.dict"
    echo "fuzz: $t for ${secs} s"
    # value profiling steers the fuzzer towards the limits the parsers
    # compare against (a name of exactly SNIFF_MAX_NAME + 1 bytes, ...)
    "$dir/fuzz_$t" -max_total_time="$secs" -timeout="$tmo" -rss_limit_mb=2048 \
        -use_value_profile=1 -print_final_stats=1 -artifact_prefix="$art/" "$@" "$corpus" >"$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cov=$(grep -E '^#[0-9]+' "$log" | tail -n 1 | sed -n 's/.*\(cov: [0-9]* ft: [0-9]*\).*/\1/p')
    files=$(ls "$corpus" | wc -l)
    if [ "$rc" -ne 0 ]; then
        fail=1
        echo "fuzz: $t FAILED (exit $rc); last lines of $log:"
        tail -n 60 "$log" | sed 's/^/    /'
        echo "fuzz: $t: reproduce with: $dir/fuzz_$t <input>; inputs found:"
        ls -l "$art" | sed 's/^/    /'
    else
        echo "fuzz: $t ok: ${runs:-?} runs, ${cov:-?}, corpus $files files"
    fi
done
exit $fail
