#!/bin/sh
# The shared library exports exactly what the public headers declare with
# NF_API: nothing internal leaks, nothing declared is missing.
#   tests/exports.sh PATH/TO/libnodeflow.so SOURCE_DIR
set -u
lib=$1
src=$2
work=$(mktemp -d /tmp/nodeflow-exports-XXXXXX)
trap 'rm -rf "$work"' EXIT
nm -D --defined-only "$lib" | awk '{print $NF}' | sort -u >"$work/exported"
# every "NF_API ... nf_name(" of the headers, declarations that span lines included
cat "$src"/include/nodeflow/*.h | tr '\n' ' ' | grep -o 'NF_API [^;(]*(' | grep -o 'nf_[a-z_0-9]*($' | tr -d '(' |
    sort -u >"$work/declared"
extra=$(comm -23 "$work/exported" "$work/declared")
missing=$(comm -13 "$work/exported" "$work/declared")
[ -z "$extra" ] || echo "FAIL: exported but not declared in include/nodeflow:" $extra
[ -z "$missing" ] || echo "FAIL: declared but not exported:" $missing
echo "exports: $(wc -l <"$work/exported") exported, $(wc -l <"$work/declared") declared"
# the public headers need neither OpenBLAS nor cJSON: pkg-config --cflags
# must not hand their include paths to a program (no Requires lines)
pc="$(dirname "$lib")/meson-private/nodeflow.pc"
pc_ok=1
if [ ! -f "$pc" ] || grep -q '^Requires' "$pc" || [ "$(sed -n 's/^Cflags: //p' "$pc")" != '-I${includedir}' ]; then
    echo "FAIL: $pc: its Cflags or Requires pull in other packages"
    pc_ok=0
fi
[ -z "$extra" ] && [ -z "$missing" ] && [ -s "$work/declared" ] && [ "$pc_ok" = 1 ]
