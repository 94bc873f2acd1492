#!/bin/sh
# Data-parallel training on this machine (issue 15's benchmark): W1 and
# W2 (one epoch each) and W3 (60 steps) as one process at 1 and at 2 threads, and as
# 2 processes of one thread each (mpirun -np 2) at the same global batch,
# with the gradient sum made once after backward and in buckets that
# overlap backward (bucket_mb). Rounds interleave the set-ups; prints each
# run's training time (the epoch's "seconds" of `nodeflow train --json`)
# and the medians.
# Run it alone on the machine: no build, test or other benchmark beside it.
#   bench/dist.sh [ROUNDS]      default 3; needs a build in build/ with MPI
set -eu
cd "$(dirname "$0")/.."
rounds=${1:-3}
nodeflow=build/nodeflow
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

for r in $(seq "$rounds"); do
    for setup in one1 one2 np2 np2-buckets; do
        for w in W1 W2 W3; do
            if [ $w = W1 ]; then
                model=models/fashion_mlp.nfg length="--epochs 1" per=32 bucket=0.25
            elif [ $w = W2 ]; then
                model=models/fashion_lenet.nfg length="--epochs 1" per=32 bucket=0.0625
            else
                model=models/fashion_cnn.nfg length="--steps 60 --epochs 1" per=64 bucket=1
            fi
            case $setup in
            one1) set -- $nodeflow train $model $length --threads 1 ;;
            one2) set -- $nodeflow train $model $length --threads 2 ;;
            np2) set -- mpirun -np 2 $nodeflow train $model $length --set batch=$per --set bucket_mb=0 ;;
            np2-buckets) set -- mpirun -np 2 $nodeflow train $model $length --set batch=$per --set bucket_mb=$bucket ;;
            esac
            t=$("$@" --data fashion-mnist:train --json 2>&1 | sed -n 's/.*"seconds": \([0-9.e+-]*\)}$/\1/p' | tail -1)
            echo "round $r: $w $setup $t s"
            echo "$w $setup $t" >>"$out/times"
        done
    done
done
echo "medians:"
for w in W1 W2 W3; do
    for setup in one1 one2 np2 np2-buckets; do
        m=$(awk -v w=$w -v s=$setup '$1 == w && $2 == s { print $3 }' "$out/times" | sort -n |
            awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
        echo "  $w $setup $m s"
    done
done
