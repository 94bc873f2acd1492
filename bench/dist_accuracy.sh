#!/bin/sh
# Test accuracy after 5 epochs (issue 15, check 2): 2 processes at batch B
# (mpirun -np 2) against one process at 2B, and, as the noise floor, one
# process at B accumulating 2 batches per step (the same arithmetic as 2B
# but for rounding), for W1 (fashion_mlp, B = 64) and W2 (fashion_lenet,
# B = 32) over several seeds; prints each and the means.
#   bench/dist_accuracy.sh [SEEDS]     default 5 (W2 takes the first 3)
set -eu
cd "$(dirname "$0")/.."
seeds=${1:-5}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
acc() { # the last epoch's validation accuracy, in %
    "$@" --data fashion-mnist:train --val fashion-mnist:test 2>&1 | sed -n 's/^epoch 5.*val loss.* acc \([0-9.]*\)%.*/\1/p'
}
for w in W1 W2; do
    if [ $w = W1 ]; then model=models/fashion_mlp.nfg b=64 n=$seeds; else model=models/fashion_lenet.nfg b=32 n=$((seeds < 3 ? seeds : 3)); fi
    for seed in $(seq "$n"); do
        two=$(acc mpirun -np 2 build/nodeflow train $model --set batch=$b --set seed=$seed)
        one=$(acc build/nodeflow train $model --set batch=$((2 * b)) --set seed=$seed --threads 1)
        acc2=$(acc build/nodeflow train $model --set batch=$b --accumulate 2 --set seed=$seed --threads 1)
        echo "$w seed $seed: 2 processes $two, one at $((2 * b)) $one, one accumulating 2 $acc2"
    done
done | tee /dev/stderr | awk '{ w = $1; t[w] += $6; o[w] += $10; a[w] += $14; n[w]++ }
    END { for (w in n) printf "%s means over %d seeds: 2 processes %.2f, one process %.2f, accumulating %.2f\n",
          w, n[w], t[w] / n[w], o[w] / n[w], a[w] / n[w] }'
