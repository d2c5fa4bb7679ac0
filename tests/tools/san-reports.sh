#!/bin/sh
# san-reports.sh DIR: print every sanitizer report file (ASan, UBSan, LSan
# write DIR/<tool>.<pid> when log_path points there) and exit 1 if any.
set -u
dir=$1
files=$(find "$dir" -type f 2>/dev/null | sort)
if [ -z "$files" ]; then
    echo "sanitize: no sanitizer reports"
    exit 0
fi
n=$(echo "$files" | wc -l)
echo "sanitize: $n sanitizer report(s) in $dir:"
for f in $files; do
    echo "==== $f"
    head -n 120 "$f"
done
exit 1
