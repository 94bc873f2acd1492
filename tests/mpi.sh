#!/bin/sh
# The command line under mpirun: two processes train XOR at batch 2 each
# (global batch 4, the model's) and rank 0 alone writes the weights, the
# checkpoint and the log; the weights equal, byte for byte, one process at
# batch 2 accumulating 2 batches, and one process at batch 4 to within
# rounding (checked on the predictions); 4 processes repeat their
# checkpoint byte for byte, and resume from one bit for bit; an LSTM on
# text streams shared out has one process's loss; infer writes the rows of
# one process; eval with 3 processes counts the 10,000 test images once,
# with one process's accuracy and confusion matrix; a rank whose data
# cannot be read ends every rank with an error naming the rank; kill -9
# of one process ends the job, non-zero, within 5 s; a stopped process
# (kill -STOP) ends it within --comm-timeout and a few seconds.
# Usage: tests/mpi.sh PATH/TO/nodeflow SOURCE_DIR PATH/TO/mpirun
set -u
nodeflow=$1
src=$2
mpirun=$3
. "$src/tests/harness.sh"
start_checks mpi
expect_timeout=120
data="csv:$src/tests/data/xor.csv,label=2"

expect 0 "train with 2 processes" "$mpirun" -np 2 "$nodeflow" train "$src/models/xor.nfg" --data "$data" \
    --set batch=2 --epochs 300 --out "$work/two.safetensors" --checkpoint "$work/two.ckpt" --log "$work/two.csv"
contains "$work/out" "2 processes (MPI), 1 threads per process; batch 2 per process, 4 in all" "start line"
[ "$(grep -c '^training ' "$work/out")" = 1 ] && ok || bad "rank 0 alone reports: $(cat "$work/out")"
[ -s "$work/two.safetensors" ] && [ -s "$work/two.ckpt" ] && [ -s "$work/two.csv" ] && ok || bad "rank 0's files"

expect 0 "train alone at batch 4" "$nodeflow" train "$src/models/xor.nfg" --data "$data" --epochs 300 \
    --out "$work/one.safetensors"
printf '0,0\n0,1\n1,0\n1,1\n' > "$work/in.csv"
expect 0 "infer, 2 processes' weights" "$nodeflow" infer "$src/models/xor.nfg" --weights "$work/two.safetensors" \
    --input "$work/in.csv"
cp "$work/out" "$work/two.txt"
expect 0 "infer, one process's weights" "$nodeflow" infer "$src/models/xor.nfg" --weights "$work/one.safetensors" \
    --input "$work/in.csv"
# the same predictions to 4 decimals
if awk 'NR == FNR { a[FNR] = $0; next } { n = split(a[FNR], x, ","); split($0, y, ",");
        for (i = 1; i <= n; i++) if ((x[i] - y[i]) > 1e-4 || (y[i] - x[i]) > 1e-4) exit 1 }' \
        "$work/two.txt" "$work/out"; then ok; else bad "predictions differ: $(cat "$work/two.txt") vs $(cat "$work/out")"; fi

# 2 processes at batch 2 write the weights of one process at batch 2
# accumulating 2 batches per step, byte for byte
expect 0 "1 process accumulating 2" "$nodeflow" train "$src/models/xor.nfg" --data "$data" --set batch=2 \
    --accumulate 2 --epochs 300 --quiet --out "$work/accumulated.safetensors"
cmp -s "$work/two.safetensors" "$work/accumulated.safetensors" && ok ||
    bad "2 processes differ from one accumulating 2 batches"

# repeatable: the same 4-process command twice writes the same checkpoint
for run in 1 2; do
    expect 0 "4 processes, run $run" "$mpirun" -np 4 --oversubscribe "$nodeflow" train "$src/models/xor.nfg" \
        --data "$data" --set batch=1 --epochs 50 --quiet --checkpoint "$work/four$run.ckpt"
done
cmp -s "$work/four1.ckpt" "$work/four2.ckpt" && ok || bad "two 4-process runs wrote different checkpoints"

# a 4-process run stopped after 20 epochs and resumed to 40 ends with the
# weights of one run of 40
expect 0 "4 processes, 40 epochs" "$mpirun" -np 4 --oversubscribe "$nodeflow" train "$src/models/xor.nfg" \
    --data "$data" --set batch=1 --epochs 40 --quiet --out "$work/full.safetensors"
expect 0 "4 processes, 20 epochs" "$mpirun" -np 4 --oversubscribe "$nodeflow" train "$src/models/xor.nfg" \
    --data "$data" --set batch=1 --epochs 20 --quiet --checkpoint "$work/half.ckpt"
expect 0 "4 processes, resumed to 40" "$mpirun" -np 4 --oversubscribe "$nodeflow" train "$src/models/xor.nfg" \
    --data "$data" --set batch=1 --epochs 40 --quiet --resume "$work/half.ckpt" --out "$work/resumed.safetensors"
cmp -s "$work/full.safetensors" "$work/resumed.safetensors" && ok || bad "a resumed 4-process run differs"

# text read as streams (W4's LSTM carries its state): process r reads
# streams [16 r, 16 r + 16); the same loss as one process with all 32
expect 0 "LSTM, 2 processes" "$mpirun" -np 2 "$nodeflow" train "$src/models/char_lstm.nfg" \
    --data text:/usr/share/games/fortunes --steps 10 --set batch=16
grep -o 'train loss [0-9.]*' "$work/out" > "$work/lstm2.txt"
expect 0 "LSTM, one process" "$nodeflow" train "$src/models/char_lstm.nfg" --data text:/usr/share/games/fortunes \
    --steps 10
grep -o 'train loss [0-9.]*' "$work/out" | cmp -s - "$work/lstm2.txt" && [ -s "$work/lstm2.txt" ] && ok ||
    bad "LSTM losses: $(cat "$work/lstm2.txt") vs $(grep -o 'train loss [0-9.]*' "$work/out")"

# infer under mpirun: rank 0 writes every row, in input order, the same rows
expect 0 "infer alone" "$nodeflow" infer "$src/models/xor.nfg" --weights "$work/one.safetensors" --input "$work/in.csv"
cp "$work/out" "$work/alone.txt"
expect 0 "infer, 2 processes" "$mpirun" -np 2 "$nodeflow" infer "$src/models/xor.nfg" --weights "$work/one.safetensors" \
    --input "$work/in.csv"
cmp -s "$work/out" "$work/alone.txt" && ok || bad "infer under mpirun: $(cat "$work/out") vs $(cat "$work/alone.txt")"

# eval with 3 processes: the 10,000 test images counted once, the same
# accuracy, per-class figures and confusion matrix as one process
expect 0 "train W1 one epoch" "$nodeflow" train "$src/models/fashion_mlp.nfg" --data fashion-mnist:train --epochs 1 \
    --quiet --out "$work/mlp.safetensors"
expect 0 "eval alone" "$nodeflow" eval "$src/models/fashion_mlp.nfg" --weights "$work/mlp.safetensors" \
    --data fashion-mnist:test
cp "$work/out" "$work/eval1.txt"
expect 0 "eval, 3 processes" "$mpirun" -np 3 --oversubscribe "$nodeflow" eval "$src/models/fashion_mlp.nfg" \
    --weights "$work/mlp.safetensors" --data fashion-mnist:test
contains "$work/out" "samples 10000 " "eval under mpirun counts every image"
[ "$(grep -o 'accuracy [0-9.]*%' "$work/out")" = "$(grep -o 'accuracy [0-9.]*%' "$work/eval1.txt")" ] && ok ||
    bad "eval accuracy: $(head -1 "$work/out") vs $(head -1 "$work/eval1.txt")"
tail -n +2 "$work/eval1.txt" > "$work/eval1.rest"
tail -n +2 "$work/out" | cmp -s - "$work/eval1.rest" && ok || bad "per-class figures or confusion matrix differ"

# data smaller than one global batch is refused, not trained as empty epochs
expect 2 "data below one global batch" "$mpirun" -np 2 "$nodeflow" train "$src/models/xor.nfg" --data "$data" \
    --epochs 2
contains "$work/err" "fewer than one global batch (4 per process x 2 processes)" "global batch message"

# a rank that cannot read its data ends the job, naming itself
expect_timeout=60
cat > "$work/rank.sh" <<EOS
#!/bin/sh
if [ "\$OMPI_COMM_WORLD_RANK" = 1 ]; then d=csv:$work/none.csv; else d="$data"; fi
exec "$nodeflow" train "$src/models/xor.nfg" --data "\$d" --set batch=2 --epochs 5
EOS
chmod +x "$work/rank.sh"
"$mpirun" -np 2 "$work/rank.sh" >"$work/out" 2>"$work/err"
[ $? -ne 0 ] && ok || bad "a rank without data: exit 0"
contains "$work/err" "rank 1: " "the failing rank is named"

# kill -9 of one process mid-epoch ends the whole job, non-zero, within 5 s
"$mpirun" -np 2 "$nodeflow" train "$src/models/fashion_mlp.nfg" --data fashion-mnist:train --epochs 50 --quiet \
    --checkpoint "$work/killed.ckpt" >"$work/out" 2>"$work/err" &
job=$!
sleep 3 # data loaded, training under way
victim=""
for d in /proc/[0-9]*; do # a training process (not mpirun) of this job
    [ "$(cat "$d/comm" 2>/dev/null)" = nodeflow ] && tr '\0' ' ' <"$d/cmdline" 2>/dev/null | grep -q killed.ckpt &&
        victim=${d#/proc/}
done
if [ -n "$victim" ]; then
    kill -9 "$victim"
    start=$(date +%s)
    wait "$job"
    code=$?
    took=$(( $(date +%s) - start ))
    [ "$code" -ne 0 ] && [ "$took" -le 5 ] && ok || bad "after kill -9 of one process: exit $code after $took s"
else
    kill "$job" 2>/dev/null
    bad "no training process to kill"
fi

# a stopped process (kill -STOP) ends the job within --comm-timeout: the
# other's next collective gives up, names itself and aborts the job
"$mpirun" -np 2 "$nodeflow" train "$src/models/fashion_mlp.nfg" --data fashion-mnist:train --epochs 50 --quiet \
    --comm-timeout 2 --checkpoint "$work/stopped.ckpt" >"$work/out" 2>"$work/err" &
job=$!
sleep 3
victim=""
for d in /proc/[0-9]*; do # rank 1 of this job
    [ "$(cat "$d/comm" 2>/dev/null)" = nodeflow ] && tr '\0' ' ' <"$d/cmdline" 2>/dev/null | grep -q stopped.ckpt &&
        grep -qz '^OMPI_COMM_WORLD_RANK=1$' "$d/environ" 2>/dev/null && victim=${d#/proc/}
done
if [ -n "$victim" ]; then
    kill -STOP "$victim"
    start=$(date +%s)
    wait "$job"
    code=$?
    took=$(( $(date +%s) - start ))
    kill -9 "$victim" 2>/dev/null
    [ "$code" -ne 0 ] && [ "$took" -le 7 ] && ok || bad "after kill -STOP of one process: exit $code after $took s"
    contains "$work/err" "rank 0: " "the waiting rank names itself"
    contains "$work/err" "did not answer within 2 s" "the timeout message"
else
    kill "$job" 2>/dev/null
    bad "no training process to stop"
fi
finish_checks mpi
