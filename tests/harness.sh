# Shared by the shell checks (tests/cli.sh, files.sh, valgrind.sh):
# sourced after `nodeflow` and `src` are set; makes $work (removed on
# exit) and counts checks.
#   . "$src/tests/harness.sh"; start_checks NAME; ...; finish_checks NAME
start_checks() {
    work=$(mktemp -d "/tmp/nodeflow-$1-XXXXXX")
    trap 'rm -rf "$work"' EXIT
    passed=0
    failed=0
}

ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }

# expect CODE DESCRIPTION COMMAND...: the command exits with CODE, its
# output in $work/out and $work/err (within $expect_timeout seconds when
# that is set: a command that waits for ever fails instead of hanging)
expect() {
    want=$1; what=$2; shift 2
    if [ -n "${expect_timeout:-}" ]; then
        timeout "$expect_timeout" "$@" >"$work/out" 2>"$work/err"
    else
        "$@" >"$work/out" 2>"$work/err"
    fi
    got=$?
    if [ "$got" = "$want" ]; then ok; else bad "$what: exit $got, expected $want"; cat "$work/err"; fi
}

# contains FILE TEXT DESCRIPTION
contains() {
    if grep -qF -- "$2" "$1"; then ok; else bad "$3: no '$2' in:"; cat "$1"; fi
}

# Prints the tally; the exit status of the script
finish_checks() {
    echo "$1: $passed passed, $failed failed"
    [ "$failed" = 0 ]
}
