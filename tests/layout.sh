#!/bin/sh
# The layout's rules, checked on the source tree (tests/layout.sh SOURCE_DIR):
# no two folders include each other (directly or through others), no BLAS
# or oneDNN call outside kernels/, no MPI call outside dist/, no node-type name in the engine, nodes/ sees only
# nodes/op.h and kernels/, no fuzzer artefact tracked, no reference to a
# file outside the repository.
set -u
cd "$1"
failed=0
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }

folders="engine kernels nodes optim io data dist stats train tools bench examples tests"
# "a b" lines: folder a includes a header of folder b
edges=$(for f in $folders; do
    [ -d "$f" ] || continue
    grep -ho '#include "[a-z]*/' $(find "$f" -name '*.[ch]' -not -path '*/fuzz/*') 2>/dev/null |
        sed 's|#include "||; s|/||' | sort -u | while read -r to; do
            [ "$to" != "$f" ] && [ -d "$to" ] && echo "$f $to"
        done
done | sort -u)
# a cycle exists iff tsort complains
if ! printf '%s\n' "$edges" | tsort >/dev/null 2>"${TMPDIR:-/tmp}/nf-tsort.$$"; then
    bad "folders include each other in a loop: $(cat "${TMPDIR:-/tmp}/nf-tsort.$$")"
fi
rm -f "${TMPDIR:-/tmp}/nf-tsort.$$"
if printf '%s\n' "$edges" | grep -q '^nodes \(engine\|optim\|io\|data\|train\)$'; then
    bad "nodes/ includes an engine header: $(printf '%s\n' "$edges" | grep '^nodes ')"
fi
stray=$(grep -ln 'cblas_\|openblas_' $(find engine nodes optim io data train tools -name '*.[ch]'))
[ -z "$stray" ] || bad "BLAS calls outside kernels/: $stray"
stray=$(grep -ln 'dnnl_' $(find engine nodes optim io data dist train tools -name '*.[ch]'))
[ -z "$stray" ] || bad "oneDNN calls outside kernels/: $stray"
stray=$(grep -ln 'MPI_[A-Z][a-z]' $(find engine kernels nodes optim io data train tools -name '*.[ch]'))
[ -z "$stray" ] || bad "MPI calls outside dist/: $stray"
# (engine/build.c is the C builder API, nf_linear() and the like: it names
# the type it adds; what the engine does never depends on a name)
for n in lstm gru conv2d conv1d linear relu input output memory dropout batchnorm; do
    hits=$(grep -n "\"$n\"" engine/*.c | grep -v '^engine/build.c:')
    [ -z "$hits" ] || bad "engine/ names the node type '$n': $hits"
done
if [ -d .git ] && git ls-files | grep -E '(^|/)(oom|crash|leak|timeout|slow-unit)-[0-9a-f]{8,}' >/dev/null; then
    bad "fuzzer artefacts are tracked: $(git ls-files | grep -E '(oom|crash|leak|timeout)-[0-9a-f]{8,}')"
fi
outside=$(grep -rlI 'shared/bench\|\.\./shared' --exclude-dir=.git --exclude=layout.sh . 2>/dev/null)
[ -z "$outside" ] || bad "files point outside the repository: $outside"
echo "layout: $failed failed"
[ "$failed" = 0 ]
