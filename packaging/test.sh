#!/usr/bin/env bash
# One command for the whole test suite on a fresh Debian 12 machine: installs what
# is missing, then
#   1. checks formatting (.clang-format),
#   2. builds with -Werror and runs the unit tests (criterion, via ctest) and the
#      end-to-end tests (pytest, integration/),
#   3. builds with AddressSanitizer + UndefinedBehaviorSanitizer and runs both again;
#      any sanitizer report (from a test or from a broker/worker/client process the
#      integration tests started) fails the run,
#   4. fuzzes the protocol decoder, the journal reader and the stream reader with libFuzzer for
#      $HQ_FUZZ_SECONDS each (default 30).
# HQ_TEST_STAGES selects stages (default "format normal sanitize fuzz").
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash packaging/install-deps.sh

stages=${HQ_TEST_STAGES:-format normal sanitize fuzz}
jobs=$(nproc)
results=$(mktemp -d /tmp/hq-test-results.XXXXXX)
failed_stages=()

has_stage() { [[ " $stages " == *" $1 "* ]]; }
stage() { echo; echo "==== $*"; }

run_suite() { # name build-dir pytest-marker-expression [env...]
  local name=$1 build=$2 markers=$3
  shift 3
  local rc=0
  (cd "$build" && env "$@" ctest --output-on-failure -j"$jobs" --timeout 300 \
      --output-junit "$results/$name-unit.xml") || rc=1
  env "$@" HQ_BUILD_DIR="$build" /usr/bin/python3 -m pytest -q -p no:cacheprovider integration \
      -m "$markers" \
      --junitxml="$results/$name-integration.xml" || rc=1
  return $rc
}

if has_stage format; then
  stage "format check (clang-format)"
  files=$(git ls-files '*.c' '*.h' '*.cpp' | grep -v '^tests/fuzz/corpus' || true)
  if [ -n "$files" ] && ! clang-format --dry-run --Werror $files; then
    failed_stages+=(format)
  fi
fi

if has_stage normal; then
  stage "normal build (-Werror) and tests"
  HQ_BUILD_DIR=$root/build bash packaging/build.sh
  # The self-contained hq (packaging/static.sh; its libraries are cached under
  # /var/cache/hq-static: ~25 s with the cache, ~3 min without) and the release files
  # made from it (packaging/release.sh), which the `packaging` tests check and run in
  # a bare root.
  static_env=()
  if HQ_STATIC_BUILD=$root/build-static HQ_RELEASE_DIR=$root/build-static/dist \
      bash packaging/release.sh; then
    static_env=("HQ_STATIC_BUILD=$root/build-static" "HQ_RELEASE_DIR=$root/build-static/dist")
  else
    failed_stages+=(release)
  fi
  run_suite normal "$root/build" "" "${static_env[@]}" || failed_stages+=(normal)
fi

if has_stage sanitize; then
  stage "AddressSanitizer + UndefinedBehaviorSanitizer build and tests"
  HQ_BUILD_DIR=$root/build-asan bash packaging/build.sh -DHQ_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
  logs=$(mktemp -d /tmp/hq-sanitizer-logs.XXXXXX)
  # verify_asan_link_order=0: the fault-injection and libfaketime tests preload
  # a shim ahead of the ASan runtime on purpose.
  san_env=(
    "ASAN_OPTIONS=abort_on_error=1:detect_leaks=1:verify_asan_link_order=0:log_path=$logs/asan:suppressions=$root/packaging/asan.supp"
    "LSAN_OPTIONS=suppressions=$root/packaging/lsan.supp:log_path=$logs/lsan"
    "UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:log_path=$logs/ubsan"
    "HQ_SANITIZED=1"
  )
  # The real-SLURM tests run once, in the normal stage (they test the batch system's
  # path, not memory safety, and start a whole SLURM); so do the packaging tests
  # (they test the packaged, uninstrumented binary), and the browser test of the
  # journal report (it tests the page in chromium; the report's C code is covered by
  # the other report tests, which run here too). The `ssh` tests (a real sshd on
  # loopback, a few seconds in all) run in both stages: `hq worker deploy-ssh` and
  # the workers it starts are instrumented here, and the test sshd passes the
  # sanitizer settings to its sessions.
  run_suite sanitize "$root/build-asan" "not slurm and not packaging and not browser and not rlimit_as" "${san_env[@]}" || failed_stages+=(sanitize)
  if [ -n "$(ls -A "$logs")" ]; then
    echo "sanitizer reports were written:"
    for f in "$logs"/*; do echo "--- $f"; head -60 "$f"; done
    failed_stages+=(sanitizer-reports)
  fi
fi

if has_stage fuzz; then
  # Three targets, $HQ_FUZZ_SECONDS each (default 30: 90 s in all).
  fuzz_seconds=${HQ_FUZZ_SECONDS:-30}
  stage "libFuzzer on the protocol decoder, the journal reader and the stream reader (${fuzz_seconds} s each)"
  CC=clang CXX=clang++ cmake -S "$root" -B "$root/build-fuzz" -DHQ_FUZZ=ON -DHQ_WERROR=ON \
      -DCMAKE_BUILD_TYPE=Debug >/dev/null
  cmake --build "$root/build-fuzz" -j"$jobs" --target fuzz_decode fuzz_journal fuzz_stream
  for target in decode:corpus journal:corpus-journal stream:corpus-stream; do
    name=${target%%:*}
    corpus=$(mktemp -d /tmp/hq-fuzz-corpus.XXXXXX)
    cp -r "tests/fuzz/${target#*:}/." "$corpus/"
    if ! "$root/build-fuzz/fuzz_$name" -malloc_limit_mb=64 -max_total_time="$fuzz_seconds" \
        -print_final_stats=1 -artifact_prefix="$results/$name-" "$corpus" \
        2>"$results/fuzz-$name.log"; then
      tail -40 "$results/fuzz-$name.log"
      failed_stages+=("fuzz-$name")
    else
      echo "fuzz_$name:"
      grep -E 'stat::number_of_executed_units|Done' "$results/fuzz-$name.log" || true
    fi
  done
fi

stage "summary"
/usr/bin/python3 - "$results" <<'PY'
import glob, sys, xml.etree.ElementTree as ET
passed = failed = skipped = 0
for f in glob.glob(sys.argv[1] + "/*.xml"):
    root = ET.parse(f).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    for s in suites:
        t = int(s.get("tests", 0)); fl = int(s.get("failures", 0)) + int(s.get("errors", 0))
        sk = int(s.get("skipped", 0) or s.get("disabled", 0) or 0)
        passed += t - fl - sk; failed += fl; skipped += sk
print(f"tests: {passed} passed, {failed} failed, {skipped} skipped")
PY
if [ ${#failed_stages[@]} -ne 0 ]; then
  echo "FAILED stages: ${failed_stages[*]}"
  exit 1
fi
echo "all stages passed: $stages"
