#!/bin/sh
# The nodeflow command under valgrind memcheck: short trainings (an MLP,
# a convolutional net, an LSTM and an RNN unrolled in time), an eval, an
# infer, a generate and failed loads must show no error and no leak
# (definite or indirect). Usage: tests/valgrind.sh PATH/TO/nodeflow SOURCE_DIR
set -u
nodeflow=$1
src=$2
. "$src/tests/harness.sh"
start_checks valgrind
export NODEFLOW_THREADS=1
# The engine's own kernels: oneDNN's JIT products read whole vectors past
# the ends of the packed buffers it allocates itself, which memcheck
# reports (its products are checked against the reference kernels by
# test_kernels instead).
export NODEFLOW_KERNELS=openblas
if ! command -v valgrind >/dev/null; then
    echo "valgrind is not installed (tools/setup-debian --test installs it)"
    exit 1
fi

# memcheck CODE DESCRIPTION ARGS...: exit CODE, and nothing from valgrind
memcheck() {
    want=$1; what=$2; shift 2
    valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect \
        --error-exitcode=99 --log-file="$work/vg.log" "$nodeflow" "$@" >"$work/out" 2>"$work/err"
    got=$?
    if [ "$got" = "$want" ] && [ ! -s "$work/vg.log" ]; then
        ok
    else
        bad "$what: exit $got (expected $want)"
        cat "$work/vg.log" "$work/err"
    fi
}

awk 'BEGIN{srand(3); for (i = 0; i < 64; i++) { a = rand(); b = rand(); printf "%d,%f,%f\n", (a > 0.5) != (b > 0.5), a, b } }' \
    >"$work/xor.csv"
awk 'BEGIN{srand(4); for (i = 0; i < 8; i++) { printf "%d", i % 10; for (j = 0; j < 784; j++) printf ",%f", rand(); printf "\n" } }' \
    >"$work/images.csv"
for i in 1 2 3 4 5 6 7 8; do echo "a small corpus of text, line $i, to train on." >>"$work/text.txt"; done
sed -e 's/shape=64/shape=8/' -e 's/classes=114/classes=40/' -e 's/out=114/out=40/' -e 's/hidden=256/hidden=16/' \
    "$src/models/char_lstm.nfg" >"$work/lstm.nfg"
sed -e 's/classes=114/classes=40/' -e 's/out=114/out=40/' -e 's/out=128/out=16/g' -e 's/shape=128/shape=16/' \
    -e 's/^unroll = 64/unroll = 6/' "$src/models/char_rnn_primitives.nfg" >"$work/rnn.nfg"

memcheck 0 "train xor" train "$src/models/xor.nfg" --data "csv:$work/xor.csv,label=0" --epochs 3 --out "$work/xor.st" \
    --checkpoint "$work/xor.ckpt" --quiet
memcheck 0 "resume xor" train "$src/models/xor.nfg" --data "csv:$work/xor.csv,label=0" --epochs 4 \
    --resume "$work/xor.ckpt" --quiet
memcheck 0 "eval" eval "$src/models/xor.nfg" --weights "$work/xor.st" --data "csv:$work/xor.csv,label=0"
cut -d, -f2,3 "$work/xor.csv" >"$work/features.csv"
memcheck 0 "infer" infer "$src/models/xor.nfg" --weights "$work/xor.st" --input "$work/features.csv" \
    --output "$work/out.npy"
memcheck 0 "train lenet" train "$src/models/fashion_lenet.nfg" --data "csv:$work/images.csv,label=0" --batch 4 \
    --epochs 1 --quiet
memcheck 0 "train an lstm on text" train "$work/lstm.nfg" --data "text:$work/text.txt" --batch 2 --steps 3 \
    --out "$work/lstm.st" --quiet
memcheck 0 "generate" generate "$work/lstm.nfg" --weights "$work/lstm.st" --prime "a " --length 10
memcheck 0 "train an rnn through time" train "$work/rnn.nfg" --data "text:$work/text.txt" --batch 2 --steps 3 --quiet
memcheck 2 "failed model load" check "$src/tests/bad/models/cycle.nfg"
memcheck 2 "failed weights load" eval "$src/models/xor.nfg" --weights "$src/tests/bad/weights/invalid_json.safetensors" \
    --data "csv:$work/xor.csv,label=0"
memcheck 2 "failed data load" train "$src/models/xor.nfg" --data "csv:$src/tests/bad/data/field_not_number.csv"

finish_checks valgrind
