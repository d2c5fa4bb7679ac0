#!/bin/sh
# vg-logs.sh DIR: judge the valgrind logs DIR/[<suite>/]<pid>.log of every
# daemon the suites started.  Exit 1 if any shows a memcheck error or a
# definite or indirect leak; logs without an ERROR SUMMARY (a daemon that was
# killed, so its leak check never ran) are listed but do not fail.
set -u
dir=$1
n=0
bad=0
cut=0
pat='Invalid (read|write|free)|uninitialised|Syscall param|Mismatched free|overlap|definitely lost in|indirectly lost in|Process terminating with default action'
for f in $(find "$dir" -name '*.log' | sort); do
    n=$((n + 1))
    errs=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$f" | tail -n 1)
    if [ -n "$errs" ] && [ "$errs" -gt 0 ] || grep -Eq "$pat" "$f"; then
        bad=$((bad + 1))
        echo "==== $f: ${errs:-?} errors"
        cmd=$(sed -n 's/^==[0-9]*== Command: //p' "$f" | head -n 1)
        echo "     daemon: $cmd"
        grep -v '^==[0-9]*== *$' "$f" | head -n 150
    elif [ -z "$errs" ]; then
        cut=$((cut + 1))
        cmd=$(sed -n 's/^==[0-9]*== Command: //p' "$f" | head -n 1)
        echo "valgrind: $f has no summary (daemon killed before exit?): $cmd"
    fi
done
echo "valgrind: $n daemon logs, $bad with errors or leaks, $cut without a summary"
[ "$bad" -eq 0 ]
