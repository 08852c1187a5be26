#!/usr/bin/env bash
# Per-test wall time of 200 empty tests, measured side by side in one run:
#   tinyo, --test-threads=1 | tinyo, default threads | the same tests as plain #[test]s under
#   `cargo nextest run` (one process per test, no isolation) | the same under libtest.
# Prints medians of REPS runs and ratios to the nextest baseline. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${REPS:-7}
cargo build -q --release --tests -p tinyo-bench
iso=$(cargo test -q --release -p tinyo-bench --test empty_isolated --no-run --message-format=json 2>/dev/null |
    grep -o '"executable":"[^"]*empty_isolated[^"]*"' | cut -d'"' -f4 | tail -1)
plain=$(cargo test -q --release -p tinyo-bench --test empty_plain --no-run --message-format=json 2>/dev/null |
    grep -o '"executable":"[^"]*empty_plain[^"]*"' | cut -d'"' -f4 | tail -1)

secs() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }; e=$(date +%s%N); echo $(( (e - s) / 1000 )); }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

declare -A results
for _ in $(seq "$REPS"); do
    results[iso1]+="$(secs "$iso" --test-threads=1 -q) "
    results[iso]+="$(secs "$iso" -q) "
    results[nextest]+="$(secs cargo nextest run --release -p tinyo-bench --test empty_plain --no-fail-fast) "
    results[libtest]+="$(secs "$plain" -q) "
done
base=$(tr ' ' '\n' <<<"${results[nextest]}" | grep . | median)
printf '%-40s %12s %10s %14s\n' "200 empty tests" "median wall" "per test" "vs nextest"
for k in iso1 iso nextest libtest; do
    m=$(tr ' ' '\n' <<<"${results[$k]}" | grep . | median)
    case $k in
        iso1) name="tinyo, isolated, --test-threads=1" ;;
        iso) name="tinyo, isolated, default threads" ;;
        nextest) name="cargo nextest run, plain #[test]" ;;
        libtest) name="libtest, plain #[test], in-process" ;;
    esac
    awk -v n="$name" -v m="$m" -v b="$base" 'BEGIN { printf "%-40s %9.1f ms %7.2f ms %13.2fx\n", n, m / 1000, m / 1000 / 200, m / b }'
done
