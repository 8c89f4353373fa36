#!/usr/bin/env bash
# Run the randomized record check (check_records.c, fixed seed), then build
# the libFuzzer target on the decoder and run it for HP_FUZZ_SECONDS
# (default 60).  Seeds: the fixtures' passes.  Prints 'fuzz: 1 passed, 0 failed'
# when no crash, leak or sanitizer report was found.
set -euo pipefail
cd "$(dirname "$0")"
secs=${HP_FUZZ_SECONDS:-60}
CC=${CC_FUZZ:-clang-14}
# the record checks, from a fixed seed, under AddressSanitizer (check_records.c)
$CC -g -O1 -Wall -Wextra -Wno-unused-parameter -fsanitize=address,undefined \
    -fno-sanitize-recover=undefined -I../../src -o check_records check_records.c ../../src/audit/block.c
if ! ./check_records "${HP_RECORDS_ITERATIONS:-50000}" 20260112; then
    echo "fuzz: 0 passed, 1 failed"
    exit 1
fi
$CC -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -I../../src -o fuzz_decode fuzz_decode.c ../../src/codec/*.c ../../src/audit/block.c -lz -lm
rm -rf corpus && mkdir -p corpus
# seed with the body (after HC1:) of every fixture pass and hostile input
python3 - <<'PY'
import re
for i, m in enumerate(re.finditer(r"VALUES \('[^']*', 'HC1:([^']*)'\)", open("../fixtures/fixtures.sql").read())):
    open("corpus/seed%03d" % i, "w").write(m.group(1))
PY
cp seeds/* corpus/   # an audit block of three records, from the upgrade test
if ./fuzz_decode -max_total_time="$secs" -max_len=20000 -timeout=5 -rss_limit_mb=1024 \
      -print_final_stats=1 corpus >fuzz.log 2>&1; then
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb" fuzz.log || true
    echo "fuzz: 1 passed, 0 failed"
else
    tail -40 fuzz.log
    echo "fuzz: 0 passed, 1 failed"
    exit 1
fi
