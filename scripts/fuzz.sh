#!/bin/sh
# fuzz.sh FUZZTIME pkg:Target... runs each fuzz target for FUZZTIME.
#
# A failing input is written under the package's testdata/fuzz/<Target>/
# and fails the run. go1.26's fuzz coordinator can also fail a run with a
# bare "context deadline exceeded" when -fuzztime expires while a worker
# is mid-input (golang/go#75804, fixed in go1.27): with no input written,
# that is reported loudly and not counted as a failure.
set -u
time=$1
shift
status=0
for t in "$@"; do
	pkg=${t%%:*}
	name=${t#*:}
	dir=$pkg/testdata/fuzz/$name
	before=$(ls "$dir" 2>/dev/null | wc -l)
	echo "fuzz $pkg $name for $time"
	out=$(${GO:-go} test -run '^$' -fuzz "^$name\$" -fuzztime "$time" "$pkg" 2>&1)
	rc=$?
	echo "$out" | tail -n 5
	if [ $rc -ne 0 ]; then
		after=$(ls "$dir" 2>/dev/null | wc -l)
		if [ "$after" -eq "$before" ] && echo "$out" | grep -q 'context deadline exceeded'; then
			echo "WARNING: $name: go's fuzz coordinator stopped with 'context deadline exceeded' and wrote no failing input (golang/go#75804): not a failure"
		else
			echo "FAIL: $name (a failing input is in $dir)"
			status=1
		fi
	fi
done
exit $status
