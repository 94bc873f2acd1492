#!/bin/sh
# An imported ONNX model against the same model written as .nfg (issue
# 16's check 5): W2 (LeNet-5) as exported by PyTorch
# (tests/fixtures/onnx/w2_lenet.onnx) and models/fashion_lenet.nfg, each
# evaluated on the 60,000 Fashion-MNIST training images (`nodeflow eval`,
# batch 256), at 1 and 2 threads, interleaved rounds; prints the medians
# of the wall times and their ratio. Run it alone on the machine.
#   bench/onnx_speed.sh [ROUNDS]    default 5; needs a build in build/
set -eu
cd "$(dirname "$0")/.."
rounds=${1:-5}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
build/nodeflow import tests/fixtures/onnx/w2_lenet.onnx -o "$tmp/w2.nfg" --weights-out "$tmp/w2.st" >/dev/null
# the .nfg's weights: the imported ones under the .nfg's names do not fit, so
# train the .nfg one step (the speed does not depend on the values)
build/nodeflow train models/fashion_lenet.nfg --data fashion-mnist:test --steps 1 --quiet --out "$tmp/nfg.st"
seconds() { # wall time of a command, in seconds
    start=$(date +%s.%N)
    "$@" >/dev/null
    end=$(date +%s.%N)
    echo "$end - $start" | bc
}
for r in $(seq "$rounds"); do
    for t in 1 2; do
        echo "onnx $t $(seconds build/nodeflow eval tests/fixtures/onnx/w2_lenet.onnx --data fashion-mnist:train --threads $t)" >>"$tmp/times"
        echo "nfg $t $(seconds build/nodeflow eval models/fashion_lenet.nfg --weights "$tmp/nfg.st" --data fashion-mnist:train --threads $t)" >>"$tmp/times"
    done
done
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
for t in 1 2; do
    o=$(awk -v t=$t '$1 == "onnx" && $2 == t { print $3 }' "$tmp/times" | median)
    n=$(awk -v t=$t '$1 == "nfg" && $2 == t { print $3 }' "$tmp/times" | median)
    echo "$t thread(s): imported .onnx $o s, .nfg $n s, ratio $(echo "scale=3; $o / $n" | bc)"
done
