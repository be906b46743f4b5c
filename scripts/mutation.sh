#!/usr/bin/env bash
# Mutation testing (mutmut 3) of the modules where a silent bug costs most.
#   bash scripts/mutation.sh                 every group below
#   bash scripts/mutation.sh queue rotate    only these groups
#   MUTATION_MODULES=capsvc/filter/_bpf.py bash scripts/mutation.sh filter
#                                            one group's tests, mutating only these modules
#   MUTATION_MUTANTS='capsvc.filter._bpf.x_emit__mutmut_3 capsvc.filter._bpf.x_dump*' ...
#                                            run only these mutants (names or globs, as
#                                            `mutmut results` prints them), e.g. last run's survivors
# Each group is run in a copy of the tree (a temporary directory; the work tree is not touched)
# with the tests that exercise it; mutmut runs, for each mutant, only the tests that reached the
# mutated function. The C speed-ups run as built (setup.sh builds them): the sinks and sources
# then take the paths users run, and the Python code the C replaces is exercised by the tests
# that hold it against the C (tests/sinks/test_pcap_speedups.py, ...). Prints a line per module, the surviving mutants (`mutmut show NAME` in
# the kept copy shows one), and last `mutation score: S% (killed K of N)` over every module run.
# Killed counts mutmut's killed, timeout and segfault; survivors and mutants no test reached
# count as not killed. Not part of .ci/run: a full run takes well over an hour (docs/testing.md).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

# group: modules to mutate | tests that exercise them. Only tests that run capsvc in-process:
# a capsvc started as a subprocess under mutmut finds no [tool.mutmut] settings and exits.
declare -A MODULES TESTS
MODULES[queue]="capsvc/_queue.py"
TESTS[queue]="tests/test_queue.py tests/test_session.py tests/test_session_sources.py tests/sources/afpacket/test_records.py"
MODULES[session]="capsvc/_session.py"
TESTS[session]="tests/test_session.py tests/test_session_stop.py tests/test_session_sources.py tests/test_subscriber.py tests/test_linktype_check.py tests/test_backends.py tests/test_queue.py tests/test_sinkthread.py tests/sources/afpacket/test_records.py"
MODULES[sinkthread]="capsvc/_sinkthread.py"
TESTS[sinkthread]="tests/test_sinkthread.py tests/test_session.py tests/test_session_stop.py tests/test_session_sources.py tests/sources/afpacket/test_records.py"
MODULES[pcap]="capsvc/sinks/_pcap.py capsvc/sinks/_pcapng.py"
TESTS[pcap]="tests/sinks/test_pcap.py tests/sinks/test_pcapng.py tests/sinks/test_pcap_speedups.py tests/sources/afpacket/test_records.py"
MODULES[capfile]="capsvc/sources/capfile/_decode.py capsvc/sources/capfile/_pcapng.py capsvc/sources/capfile/_source.py"
TESTS[capfile]="tests/sources/capfile/test_pcapfile.py tests/sources/capfile/test_decoder_edges.py tests/sources/capfile/test_records_read.py tests/sources/capfile/test_source_edges.py tests/test_backends.py"
MODULES[filter]="capsvc/filter/_lower.py capsvc/filter/_lowerbase.py capsvc/filter/_bpf.py"
# The filter group runs the differential test with libpcap's answers cached and the programs run
# in C (test_differential_cached.py, a few seconds), not the full one (test_differential.py).
TESTS[filter]="tests/filter/test_bpf.py tests/filter/test_match.py tests/filter/test_differential_cached.py tests/filter/test_differential.py::test_libpcaps_own_expressions_are_all_accepted tests/filter/test_differential.py::test_large_expressions_equal_libpcap tests/filter/test_differential.py::test_deliberately_refused tests/filter/test_differential.py::test_deliberately_accepted tests/filter/test_bpf_shapes.py tests/filter/test_lower_arith.py tests/filter/test_lowerbase_frames.py tests/filter/test_vxlan.py"
MODULES[auth]="capsvc/service/_http.py"
TESTS[auth]="tests/service/test_token.py tests/service/test_http.py tests/service/test_service_api.py tests/security/test_requests.py"
MODULES[files]="capsvc/_files.py"
TESTS[files]="tests/test_files.py tests/sinks/test_rotate.py"
MODULES[outputs]="capsvc/service/_outputs.py"
TESTS[outputs]="tests/service/test_outputs.py tests/service/test_service_core.py"
MODULES[rotate]="capsvc/sinks/_rotate.py"
TESTS[rotate]="tests/sinks/test_rotate.py"
ORDER=(queue auth rotate pcap sinkthread session outputs files capfile filter)

groups=("$@")
[ ${#groups[@]} -gt 0 ] || groups=("${ORDER[@]}")
for g in "${groups[@]}"; do
    [ -n "${MODULES[$g]:-}" ] || { echo "mutation: no group $g (groups: ${ORDER[*]})" >&2; exit 2; }
done

.venv/bin/python -c "import mutmut" 2>/dev/null ||
    .venv/bin/python -m pip install -q --disable-pip-version-check 'mutmut>=3.8,<4'
work=${MUTATION_WORKDIR:-$(mktemp -d /tmp/capsvc-mutation.XXXXXX)}
echo "mutation: working in $work" >&2
started=$(date +%s)
total_killed=0
total_all=0
for g in "${groups[@]}"; do
    dir=$work/$g
    rm -rf "$dir"
    mkdir -p "$dir"
    git ls-files -z | (cd "$root" && xargs -0 cp --parents -t "$dir")
    cp capsvc/_speedups*.so "$dir/capsvc/" 2>/dev/null || true  # built, not in git
    # mutmut's own settings: what to mutate, which tests to run (the first run maps tests to
    # functions), quiet pytest. Appended to the copy's pyproject.toml only.
    {
        echo
        echo "[tool.mutmut]"
        echo 'source_paths = ["capsvc"]'
        printf 'only_mutate = [%s]\n' \
            "$(printf '"%s",' ${MUTATION_MODULES:-${MODULES[$g]}} | sed 's/,$//')"
        printf 'pytest_add_cli_args_test_selection = [%s]\n' \
            "$(printf '"%s",' ${TESTS[$g]} | sed 's/,$//')"
        echo 'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q", "--hypothesis-profile=mutation"]'
        echo 'also_copy = ["tests", "config", "setup.py"]'
    } >>"$dir/pyproject.toml"
    g_started=$(date +%s)
    # shellcheck disable=SC2086  # the names are split on purpose
    (cd "$dir" && "$root/.venv/bin/mutmut" run ${MUTATION_MUTANTS:-} >"$dir/mutmut.log" 2>&1) || {
        echo "mutation: mutmut failed for $g (see $dir/mutmut.log)" >&2
        tail -20 "$dir/mutmut.log" >&2
        exit 1
    }
    (cd "$dir" && "$root/.venv/bin/mutmut" results --all true) >"$dir/results.txt"
    "$root/.venv/bin/python" "$root/scripts/_mutation_score.py" "$dir/results.txt" \
        "$(( $(date +%s) - g_started ))" "$dir/totals"
    read -r killed all <"$dir/totals"
    total_killed=$((total_killed + killed))
    total_all=$((total_all + all))
done
echo "mutation: $(( ($(date +%s) - started) / 60 )) min in all" >&2
"$root/.venv/bin/python" -c "
k, n = $total_killed, $total_all
print(f'mutation score: {100 * k / n if n else 0:.1f}% (killed {k} of {n})')"
