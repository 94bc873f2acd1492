#!/bin/sh
# The nodeflow command line end to end: every subcommand's --help, usage
# and input errors with their exit codes, both shipped models trained,
# evaluated and run, checkpoints that resume to the same weights, and
# SIGINT writing a checkpoint. Usage: tests/cli.sh PATH/TO/nodeflow SOURCE_DIR
set -u
nodeflow=$1
src=$2
train_session=${3:-}
. "$src/tests/harness.sh"
start_checks cli

for cmd in check dot train eval infer generate ops; do
    expect 0 "$cmd --help" "$nodeflow" $cmd --help
    contains "$work/out" "usage: nodeflow $cmd" "$cmd --help"
done
expect 2 "no command" "$nodeflow"
expect 2 "unknown command" "$nodeflow" frobnicate
expect 2 "check without a model" "$nodeflow" check
expect 2 "unknown option" "$nodeflow" check "$src/models/xor.nfg" --bogus
expect 2 "missing model file" "$nodeflow" check "$work/none.nfg"
contains "$work/err" "cannot open" "missing model file"
expect 2 "bad model" "$nodeflow" check "$src/tests/bad/models/typo_attr.nfg"
contains "$work/err" "typo_attr.nfg:3:19: error: linear 'fc2' has no attribute 'outs'; did you mean 'out'?" "bad model"
expect 2 "train without data" "$nodeflow" train "$src/models/xor.nfg"
expect 2 "train with a bad spec" "$nodeflow" train "$src/models/xor.nfg" --data zip:x
expect 2 "train with a bad epoch count" "$nodeflow" train "$src/models/xor.nfg" --data csv:x --epochs -1
expect 2 "train with an unknown optimizer key" "$nodeflow" train "$src/models/xor.nfg" \
    --data "csv:$src/tests/data/xor.csv,label=2" --set momentun=0.5
contains "$work/err" "has no hyper-parameter 'momentun'" "unknown optimizer key"
expect 2 "data that does not fit the model" "$nodeflow" train "$src/models/fashion_mlp.nfg" \
    --data "csv:$src/tests/data/xor.csv,label=2"
contains "$work/err" "input 'x' takes [784] per sample but the data's features are [2]" "data shape"

# check and dot
expect 0 "check" "$nodeflow" check "$src/models/fashion_mlp.nfg"
contains "$work/out" "235146 parameters" "check totals"
expect 0 "dot" "$nodeflow" dot "$src/models/fashion_mlp.nfg"
contains "$work/out" '"fc1" -> "h1" [label="[256]"];' "dot edges"

# XOR: train, eval, infer (CSV from stdin and .npy out)
xor="$src/models/xor.nfg"
expect 0 "train xor" "$nodeflow" train "$xor" --data "csv:$src/tests/data/xor.csv,label=xor" --out "$work/xor.st" --quiet
expect 0 "eval xor" "$nodeflow" eval "$xor" --weights "$work/xor.st" --data "csv:$src/tests/data/xor.csv,label=2" --json
contains "$work/out" '"accuracy": 1,' "xor learned"
printf '0,0\n0,1\n1,0\n1,1\n' | "$nodeflow" infer "$xor" --weights "$work/xor.st" --input - >"$work/xor.out" 2>"$work/err"
if [ "$(awk '{print ($1 > 0)}' "$work/xor.out" | tr -d '\n')" = "0110" ]; then ok; else bad "xor infer: $(cat "$work/xor.out")"; fi
printf 'a,b\n0,0\n1,1\n' >"$work/features.csv"
expect 0 "infer to npy" "$nodeflow" infer "$xor" --weights "$work/xor.st" --input "$work/features.csv" --output "$work/o.npy"
if head -c 6 "$work/o.npy" | grep -q NUMPY; then ok; else bad "infer .npy output"; fi
expect 2 "infer with the wrong feature count" "$nodeflow" infer "$xor" --weights "$work/xor.st" --input "$src/tests/data/xor.csv"
contains "$work/err" "input 'x' takes [2] per sample but the data's features are [3]" "infer feature count"
expect 2 "eval with missing weights" "$nodeflow" eval "$xor" --weights "$work/none.st" --data "csv:$src/tests/data/xor.csv,label=2"
expect 2 "eval with weights of another model" "$nodeflow" eval "$src/models/fashion_mlp.nfg" --weights "$work/xor.st" --data fashion-mnist:test
contains "$work/err" "is missing" "weights of another model"

# Fashion-MNIST: one epoch with validation and a log; eval's accuracy
mlp="$src/models/fashion_mlp.nfg"
expect 0 "train fashion_mlp" "$nodeflow" train "$mlp" --data fashion-mnist:train --val fashion-mnist:test \
    --epochs 1 --out "$work/mlp.st" --log "$work/log.csv"
contains "$work/out" "epoch 1/1" "epoch line"
contains "$work/log.csv" "epoch,train_loss,train_accuracy,train_top5,train_f1,train_label_accuracy,train_subset_accuracy,train_mse,train_mae,train_r2,val_loss,val_accuracy,val_top5,val_f1," "log header"
contains "$work/out" "top5" "top-5 accuracy in the epoch line"
expect 0 "eval fashion_mlp" "$nodeflow" eval "$mlp" --weights "$work/mlp.st" --data fashion-mnist:test --json
acc=$(sed 's/.*"accuracy": \([0-9.]*\).*/\1/' "$work/out")
if awk "BEGIN{exit !($acc > 0.80)}"; then ok; else bad "fashion_mlp accuracy after 1 epoch: $acc"; fi
expect 0 "eval text report" "$nodeflow" eval "$mlp" --weights "$work/mlp.st" --data fashion-mnist:test
contains "$work/out" "confusion matrix" "eval report"
# confidence intervals, reproducible with the seed; the sample size; compare
expect 0 "eval --ci" "$nodeflow" eval "$mlp" --weights "$work/mlp.st" --data fashion-mnist:test --ci 0.95 \
    --bootstrap 300 --half-width 0.002 --jackknife
contains "$work/out" "95% confidence intervals: percentile bootstrap, 300 resamples stratified by class" "--ci header"
contains "$work/out" "  (Wilson)" "Wilson's interval"
contains "$work/out" "needs about" "the sample size for a narrower interval"
cp "$work/out" "$work/ci1.txt"
expect 0 "eval --ci again" "$nodeflow" eval "$mlp" --weights "$work/mlp.st" --data fashion-mnist:test --ci 0.95 \
    --bootstrap 300 --half-width 0.002 --jackknife --threads 1
if cmp -s "$work/out" "$work/ci1.txt"; then ok; else bad "the intervals differ between runs (and thread counts)"; fi
expect 0 "eval --ci --json" "$nodeflow" eval "$mlp" --weights "$work/mlp.st" --data fashion-mnist:test --ci 0.9 --json
contains "$work/out" '"intervals": {"confidence": 0.9, "method": "percentile bootstrap", "resamples": 1000' "JSON intervals"
contains "$work/out" '"wilson": [' "JSON Wilson interval"
expect 2 "a confidence over 1" "$nodeflow" eval "$mlp" --weights "$work/mlp.st" --data fashion-mnist:test --ci 95
expect 0 "compare a model with itself" "$nodeflow" compare "$mlp" --weights "$work/mlp.st" "$mlp" \
    --weights "$work/mlp.st" --data fashion-mnist:test --bootstrap 200 --permutations 200
contains "$work/out" "A alone right on 0 samples, B alone on 0; p = 1" "McNemar's test of a model with itself"
contains "$work/out" "do not show a difference" "the verdict"
expect 2 "compare without the second weights" "$nodeflow" compare "$mlp" --weights "$work/mlp.st" "$mlp" \
    --data fashion-mnist:test
# pictures (a build with cairo; without it the commands say so)
if "$nodeflow" plot "$src/docs/images/learning_curves.csv" -o "$work/curves.svg" >"$work/out" 2>"$work/err"; then
    ok
    contains "$work/curves.svg" "<svg" "an SVG was written"
    expect 0 "plot to PNG" "$nodeflow" plot "$src/docs/images/learning_curves.csv" -o "$work/curves.png"
    head -c 8 "$work/curves.png" | od -c | grep -q "P   N   G" && ok || bad "not a PNG"
    expect 0 "eval --confusion-png" "$nodeflow" eval "$mlp" --weights "$work/mlp.st" --data fashion-mnist:test \
        --confusion-png "$work/confusion.png" --json
    contains "$work/out" '"confusion": [' "the JSON stays whole with a picture"
    [ -s "$work/confusion.png" ] && ok || bad "no confusion picture"
    expect 0 "a confusion picture with numbered classes" "$nodeflow" eval "$xor" --weights "$work/xor.st" \
        --data "csv:$src/tests/data/xor.csv,label=2" --confusion-png "$work/xor.svg"
    contains "$work/xor.svg" "<svg" "the numbered classes' picture"
else
    contains "$work/err" "built without cairo" "plot without cairo says so"
fi
printf 'epoch,train_loss\n1,0.5\n2,x\n' > "$work/badlog.csv"
expect 2 "a log with a bad number" "$nodeflow" plot "$work/badlog.csv" -o "$work/bad.svg"
contains "$work/err" "badlog.csv:3:3: expected a number or an empty cell" "the bad cell's place"
[ ! -e "$work/bad.svg" ] && ok || bad "a refused plot left a file"
expect 2 "plot to another format" "$nodeflow" plot "$src/docs/images/learning_curves.csv" -o "$work/curves.gif"
expect 2 "--class-names short of the classes" "$nodeflow" eval "$mlp" --weights "$work/mlp.st" \
    --data fashion-mnist:test --confusion-png "$work/c2.png" --class-names a,b,c
expect 0 "cross-validation" "$nodeflow" train "$mlp" --data fashion-mnist:train --folds 3 --samples 1500 \
    --stratified --epochs 1
contains "$work/out" "3-fold cross-validation" "the folds' table"
contains "$work/out" "mean +- sd  val_loss" "mean and standard deviation"
expect 2 "--folds with --out" "$nodeflow" train "$mlp" --data fashion-mnist:train --folds 3 --out "$work/no.st"
expect 2 "--stratified alone" "$nodeflow" train "$mlp" --data fashion-mnist:train --stratified

# resuming: 2 epochs straight == 1 epoch, checkpoint, resume for the 2nd
small="csv:$work/small.csv,label=0"
awk 'BEGIN{srand(3); for (i = 0; i < 300; i++) { a = rand(); b = rand(); printf "%d,%f,%f\n", (a > 0.5) != (b > 0.5), a, b } }' >"$work/small.csv"
expect 0 "straight" "$nodeflow" train "$xor" --data "$small" --epochs 2 --batch 16 --out "$work/straight.st" --quiet
expect 0 "first half" "$nodeflow" train "$xor" --data "$small" --epochs 1 --batch 16 --checkpoint "$work/c.ckpt" --quiet
expect 0 "resumed" "$nodeflow" train "$xor" --data "$small" --epochs 2 --batch 16 --resume "$work/c.ckpt" --out "$work/resumed.st" --quiet
if cmp -s "$work/straight.st" "$work/resumed.st"; then ok; else bad "resumed weights differ from straight ones"; fi
expect 0 "checkpoint every 7 batches" "$nodeflow" train "$xor" --data "$small" --epochs 1 --batch 16 \
    --checkpoint "$work/e.ckpt" --checkpoint-every 7 --quiet

# schedules, averaging, accumulation, clipping and early stopping from the
# command line and from a [train] section
expect 0 "adam with a schedule and an ema" "$nodeflow" train "$xor" --data "$small" --epochs 6 --batch 16 \
    --optimizer adam --lr 0.05 --schedule step --set schedule.step_size=2 --set schedule.gamma=0.5 \
    --average ema --average-decay 0.9 --accumulate 2 --clip-norm 1 --clip-value 0.5 \
    --val "$small" --log "$work/sched.csv" --out "$work/avg.st" --save-average
lrs=$(awk -F, 'NR == 1 {for (i = 1; i <= NF; i++) if ($i == "lr") c = i; next} {printf "%s ", $c}' "$work/sched.csv")
if [ "$lrs" = "0.05 0.05 0.025 0.025 0.0125 0.0125 " ]; then ok; else bad "schedule learning rates: $lrs"; fi
expect 2 "unknown schedule" "$nodeflow" train "$xor" --data "$small" --schedule linear
expect 2 "plateau without validation" "$nodeflow" train "$xor" --data "$small" --schedule plateau
expect 2 "unknown schedule key" "$nodeflow" train "$xor" --data "$small" --schedule step --set schedule.gama=0.5
contains "$work/err" "schedules have no setting 'gama'" "schedule key"
sed -e 's/epochs = 500/epochs = 40/' -e 's/^seed = 3$/seed = 3\nearly_stop = 2\nschedule = plateau\nschedule.patience = 0\nschedule.factor = 0.5/' \
    "$xor" >"$work/xor_es.nfg"
expect 0 "early stopping from [train]" "$nodeflow" train "$work/xor_es.nfg" --data "$small" --val "$small" --batch 16 --lr 2
contains "$work/out" "early stop: no better validation loss for 2 epochs" "early stop message"

# Text: the fused LSTM (windows of the input's length) and the primitive
# RNN (unrolled by [train] unroll), trained a few steps on a directory of
# text files, then generation from the vocabulary saved with the weights
mkdir -p "$work/corpus"
for i in 1 2 3 4 5 6; do
    echo "the quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs $i" >>"$work/corpus/a.txt"
    echo "sphinx of black quartz, judge my vow. how vexingly quick daft zebras jump! $i" >>"$work/corpus/b.txt"
done
printf 'binary\0file' >"$work/corpus/c.dat"
ln -s a.txt "$work/corpus/link.txt"
sed -e 's/shape=64/shape=16/' -e 's/classes=114/classes=48/' -e 's/out=114/out=48/' "$src/models/char_lstm.nfg" \
    >"$work/lstm.nfg"
expect 0 "train an lstm on text" "$nodeflow" train "$work/lstm.nfg" --data "text:$work/corpus" --batch 4 --steps 12 \
    --out "$work/lstm.st"
contains "$work/out" "train loss" "lstm epoch line"
expect 0 "generate" "$nodeflow" generate "$work/lstm.nfg" --weights "$work/lstm.st" --prime "the " --length 40 --seed 2
head -c 4 "$work/out" >"$work/gen_start"
contains "$work/gen_start" "the " "generated text starts with the prime"
if [ "$(wc -c <"$work/out")" -ge 45 ]; then ok; else bad "generate wrote $(wc -c <"$work/out") bytes"; fi
"$nodeflow" generate "$work/lstm.nfg" --weights "$work/lstm.st" --prime "the " --length 40 --seed 2 >"$work/out2"
if cmp -s "$work/out" "$work/out2"; then ok; else bad "generate with the same seed differs"; fi
expect 2 "prime outside the vocabulary" "$nodeflow" generate "$work/lstm.nfg" --weights "$work/lstm.st" --prime "THE"
contains "$work/err" "byte 0x54 at position 0 is not in the vocabulary" "prime error"
expect 2 "generate without a vocabulary" "$nodeflow" generate "$xor" --weights "$work/avg.st"
expect 2 "text shorter than one window per stream" "$nodeflow" train "$work/lstm.nfg" --data "text:$work/corpus/b.txt" \
    --batch 400
contains "$work/err" "too few for 400 streams" "short text"
sed -e 's/classes=48/classes=20/' -e 's/out=48/out=20/' "$work/lstm.nfg" >"$work/lstm20.nfg"
expect 2 "model scores fewer classes than the text has" "$nodeflow" train "$work/lstm20.nfg" \
    --data "text:$work/corpus" --batch 2 --steps 1
contains "$work/err" "the data has 38 classes but 'logits' scores 20" "class count"
sed -e 's/classes=114/classes=48/' -e 's/out=114/out=48/' -e 's/^unroll = 64/unroll = 8/' \
    "$src/models/char_rnn_primitives.nfg" >"$work/rnn.nfg"
expect 0 "train an rnn of primitives through time" "$nodeflow" train "$work/rnn.nfg" --data "text:$work/corpus" \
    --batch 4 --steps 20 --out "$work/rnn.st"
expect 0 "generate from the rnn" "$nodeflow" generate "$work/rnn.nfg" --weights "$work/rnn.st" --length 20

# Non-finite numbers: row 41 of the data (the 3rd batch once shuffled)
# overflows a scaled layer; training
# stops naming the node and the batch and keeps the last checkpoint, or
# skips that batch
awk 'BEGIN{srand(5); for (i = 0; i < 80; i++) printf "%d,%f,%f\n", i % 2, (i == 40 ? 1e30 : rand()), rand() }' \
    >"$work/nan.csv"
sed -e 's/^h      = tanh hidden$/big    = scale hidden factor=1e30\nh      = scale big factor=1e-30/' "$xor" >"$work/nan.nfg"
expect 1 "non-finite training stops" "$nodeflow" train "$work/nan.nfg" --data "csv:$work/nan.csv,label=0" --batch 1 \
    --epochs 1 --checkpoint "$work/nan.ckpt" --checkpoint-every 1 --quiet
contains "$work/err" "epoch 1, batch 3: the output of scale 'big' is infinite (row 0, element 0)" "non-finite message"
contains "$work/err" "the last checkpoint is kept" "non-finite checkpoint"
expect 0 "the kept checkpoint resumes" "$nodeflow" train "$work/nan.nfg" --data "csv:$work/nan.csv,label=0" --batch 1 \
    --epochs 1 --resume "$work/nan.ckpt" --skip-nonfinite
contains "$work/out" "(1 non-finite batches skipped)" "skipped batch counted"

# SIGINT and SIGTERM stop after the current batch and write a checkpoint
for sig in INT TERM; do
    rm -f "$work/int.ckpt"
    "$nodeflow" train "$mlp" --data fashion-mnist:train --epochs 50 --checkpoint "$work/int.ckpt" \
        --checkpoint-every 1 --quiet >"$work/int.out" 2>"$work/int.err" &
    pid=$!
    # ready once the first batch's checkpoint is there (no guess at how long the set-up takes)
    waited=0
    while [ ! -f "$work/int.ckpt" ] && [ "$waited" -lt 600 ] && kill -0 $pid 2>/dev/null; do
        sleep 0.1
        waited=$((waited + 1))
    done
    kill -$sig $pid
    wait $pid
    code=$?
    if [ "$code" = 1 ]; then ok; else bad "train interrupted by SIG$sig exited $code"; cat "$work/int.err"; fi
    contains "$work/int.err" "interrupted after" "SIG$sig message"
    expect 0 "resume after SIG$sig" "$nodeflow" train "$mlp" --data fashion-mnist:train --epochs 1 \
        --resume "$work/int.ckpt" --quiet
done

# kill -9 at random moments of a training that saves a checkpoint after
# every batch: whatever moment it hits (often inside a save), the file left
# behind is a whole checkpoint that resumes
rm -f "$work/k.ckpt"
kills=0
resumed=0
for i in 1 2 3 4 5 6 7 8 9 10 11 12; do
    "$nodeflow" train "$mlp" --data fashion-mnist:test --epochs 50 --checkpoint "$work/k.ckpt" --checkpoint-every 1 \
        --quiet >/dev/null 2>&1 &
    pid=$!
    sleep "$(awk -v i=$i 'BEGIN{srand(i); printf "%.2f", 0.3 + rand()}')"
    kill -9 $pid 2>/dev/null && kills=$((kills + 1))
    wait $pid 2>/dev/null
    [ -f "$work/k.ckpt" ] || continue
    # one step more than the checkpoint has taken (a resume with nothing
    # left to train is refused)
    taken=$(head -c 65536 "$work/k.ckpt" | grep -ao '"step":"[0-9]*"' | grep -o '[0-9][0-9]*')
    if "$nodeflow" train "$mlp" --data fashion-mnist:test --epochs 50 --resume "$work/k.ckpt" \
        --steps "$((taken + 1))" --quiet >"$work/kill.out" 2>&1; then
        resumed=$((resumed + 1))
    else
        bad "checkpoint after kill -9 number $i does not resume"
        cat "$work/kill.out"
    fi
done
if [ "$kills" -ge 10 ] && [ "$resumed" -ge 10 ]; then ok; else bad "kill -9 loop: $kills kills, $resumed resumed"; fi
# the temporary files the kills left are removed by the next save
taken=$(head -c 65536 "$work/k.ckpt" | grep -ao '"step":"[0-9]*"' | grep -o '[0-9][0-9]*')
expect 0 "a resumed save after the kills" "$nodeflow" train "$mlp" --data fashion-mnist:test --epochs 50 \
    --resume "$work/k.ckpt" --steps "$((taken + 1))" --checkpoint "$work/k.ckpt" --checkpoint-every 1 --quiet
if ls "$work" | grep -q 'k\.ckpt\.nftmp'; then bad "temporary files left after a save: $(ls "$work")"; else ok; fi

# A forward-only model (no loss, no label input) runs under infer, and its
# .npy output keeps the per-sample shape: weights from a twin with a loss.
npy_zeros() { # PATH ROWS COLS: a float32 .npy of zeros
    h="{'descr': '<f4', 'fortran_order': False, 'shape': ($2, $3), }"
    # the header, 118 bytes (octal 166) with its padding and newline: the data starts at byte 128
    { printf '\223NUMPY\001'; printf '\000'; printf '\166'; printf '\000'; printf '%s' "$h" # (dash: a NUL ends a format)
      printf "%$((117 - ${#h}))s\n" ''; head -c $(($2 * $3 * 4)) /dev/zero; } >"$1"
}
npy_zeros "$work/fx.npy" 4 2
npy_zeros "$work/fy.npy" 4 6
printf 'nodeflow 1\nx = input shape=2\ny = input shape=6\nh = linear x out=6\nloss = mse h y\n' >"$work/twin.nfg"
printf 'nodeflow 1\nx = input shape=2\nh = linear x out=6\nr = reshape h shape=2x3\no = output r\n' >"$work/fwd.nfg"
expect 0 "a multi-output regression trains" "$nodeflow" train "$work/twin.nfg" --data "npy:$work/fx.npy,$work/fy.npy" \
    --epochs 2 --batch 2 --out "$work/twin.st" --log "$work/twin.log"
if grep -q '^2,[0-9.e-]*,,,,,,[0-9.e-]*,[0-9.e-]*,[0-9.e-]*,' "$work/twin.log"; then ok; else bad "a regression logged an accuracy or no MSE/MAE/R2:"; cat "$work/twin.log"; fi

# Tasks beyond class indices, on 64 samples (a, b) in 0..7 (uint8 .npy):
# three regression targets that a linear layer fits exactly, and three
# 0/1 labels that a linear layer separates; the metrics follow the task.
npy_u8() { # PATH ROWS COLS, the values (whitespace-separated) on standard input
    h="{'descr': '|u1', 'fortran_order': False, 'shape': ($2, $3), }"
    { printf '\223NUMPY\001'; printf '\000'; printf '\166'; printf '\000'; printf '%s' "$h"
      printf "%$((117 - ${#h}))s\n" ''; printf "$(awk '{for (i = 1; i <= NF; i++) printf "\\%03o", $i}')"; } >"$1"
}
awk 'BEGIN {for (a = 0; a < 8; a++) for (b = 0; b < 8; b++) print a, b}' | npy_u8 "$work/ab.npy" 64 2
awk 'BEGIN {for (a = 0; a < 8; a++) for (b = 0; b < 8; b++) print a + b, a, 14 - 2 * b}' | npy_u8 "$work/reg.npy" 64 3
awk 'BEGIN {for (a = 0; a < 8; a++) for (b = 0; b < 8; b++) print (a > 3), (b < 4), (a > b)}' | npy_u8 "$work/ml.npy" 64 3
printf 'nodeflow 1\nx = input shape=2\ny = input shape=3\nh = linear x out=3\nloss = mse h y\n[train]\noptimizer = adam\nlr = 0.1\nbatch = 16\n' >"$work/reg.nfg"
expect 0 "train a 3-output regression" "$nodeflow" train "$work/reg.nfg" --data "npy:$work/ab.npy,$work/reg.npy" \
    --epochs 300 --json --log "$work/reg.log"
tail -n 1 "$work/out" >"$work/reg.json"
contains "$work/reg.json" '"task": "regression"' "regression task in --json"
contains "$work/reg.json" '"output_r2": [' "per-output R2 in --json"
r2=$(sed 's/.*"r2": \([-0-9.e]*\).*/\1/' "$work/reg.json")
if awk "BEGIN{exit !($r2 > 0.999)}"; then ok; else bad "3-output regression R2 after 300 epochs: $r2"; fi
if grep -q '^300,[0-9.e-]*,,,,,,[0-9.e-]*,[0-9.e-]*,[0-9.e-]*,' "$work/reg.log"; then ok; else bad "regression log row:"; tail -n 1 "$work/reg.log"; fi
printf 'nodeflow 1\nx = input shape=2\ny = input shape=3\nh = linear x out=3\nloss = bce_with_logits h y\n[train]\noptimizer = adam\nlr = 0.1\nbatch = 16\n' >"$work/ml.nfg"
expect 0 "train a multi-label classifier" "$nodeflow" train "$work/ml.nfg" --data "npy:$work/ab.npy,$work/ml.npy" \
    --val "npy:$work/ab.npy,$work/ml.npy" --epochs 300 --out "$work/ml.st"
grep '^epoch 300/300' "$work/out" >"$work/ml.line"
contains "$work/ml.line" "label-acc" "per-label accuracy in the epoch line"
subset=$(sed 's/.*val loss.*subset-acc \([0-9.]*\)%.*/\1/' "$work/ml.line")
if awk "BEGIN{exit !($subset >= 95)}"; then ok; else bad "multi-label subset accuracy after 300 epochs: $subset"; cat "$work/ml.line"; fi
# Several feature inputs and several losses: a sample's features are the
# feature inputs' values one after another (a [2], then b [1]), its labels
# likewise (ya, a class; yb, a value)
awk 'BEGIN {for (a = 0; a < 8; a++) for (b = 0; b < 8; b++) print a, b, (a + b) % 3}' | npy_u8 "$work/abc.npy" 64 3
awk 'BEGIN {for (a = 0; a < 8; a++) for (b = 0; b < 8; b++) print (a > b), a + b}' | npy_u8 "$work/two.npy" 64 2
printf 'nodeflow 1\na = input shape=2\nb = input shape=1\nya = input shape=scalar\nyb = input shape=1\n' >"$work/two.nfg"
printf 'h = concat a b\nr = relu h\nf = linear r out=16\ng = tanh f\ncls = linear g out=2\nreg = linear g out=1\n' >>"$work/two.nfg"
printf 'l1 = cross_entropy cls ya\nl2 = mse reg yb\n[train]\noptimizer = adam\nlr = 0.02\nbatch = 16\n' >>"$work/two.nfg"
expect 0 "train two inputs and two losses" "$nodeflow" train "$work/two.nfg" --data "npy:$work/abc.npy,$work/two.npy" \
    --epochs 200 --out "$work/two.st"
grep '^epoch 200/200' "$work/out" >"$work/two.line"
acc=$(sed 's/.* acc \([0-9.]*\)%.*/\1/' "$work/two.line")
if awk "BEGIN{exit !($acc >= 90)}"; then ok; else bad "two inputs, two losses: accuracy $acc"; cat "$work/two.line"; fi
expect 0 "eval two inputs and two losses" "$nodeflow" eval "$work/two.nfg" --weights "$work/two.st" \
    --data "npy:$work/abc.npy,$work/two.npy" --json
contains "$work/out" '"task": "classes"' "eval of two losses scores the first"
expect 0 "infer two feature inputs" "$nodeflow" infer "$work/two.nfg" --weights "$work/two.st" --input "$work/abc.npy"
if [ "$(wc -l <"$work/out")" = 64 ]; then ok; else bad "infer two feature inputs: $(wc -l <"$work/out") rows"; fi
expect 2 "features short of two inputs" "$nodeflow" infer "$work/two.nfg" --weights "$work/two.st" --input "$work/ab.npy"
contains "$work/err" "inputs 'a' [2] and 'b' [1] take 3 floats per sample together but the data's features are [2]" \
    "two inputs' sizes named"
expect 0 "eval a multi-label classifier" "$nodeflow" eval "$work/ml.nfg" --weights "$work/ml.st" \
    --data "npy:$work/ab.npy,$work/ml.npy" --json
contains "$work/out" '"task": "multi-label"' "eval's task"
contains "$work/out" '"subset_accuracy": ' "eval's subset accuracy"
expect 0 "infer on a forward-only model" "$nodeflow" infer "$work/fwd.nfg" --weights "$work/twin.st" --input "$work/fx.npy" \
    --output "$work/fwd.npy"
head -c 128 "$work/fwd.npy" >"$work/fwd.head"
if grep -qaF "'shape': (4, 2, 3" "$work/fwd.head"; then ok; else bad "infer flattened the per-sample shape"; fi

# Fine-tuning: a model with another head starts from the xor weights
# (matching tensors loaded, the new head left at its initialisation)
sed 's/out    = linear h out=1/out    = linear h out=2/; s/bce_with_logits logit y/cross_entropy logit y/; s/input shape=1/input shape=scalar/' \
    "$xor" >"$work/head2.nfg"
expect 0 "fine-tune a new head" "$nodeflow" train "$work/head2.nfg" --data "csv:$src/tests/data/xor.csv,label=2" \
    --epochs 300 --init "$work/xor.st" --out "$work/head2.st"
contains "$work/out" "2 loaded; 2 left at their initialisation (out.weight [2, 4], out.bias [2]); 2 of the file's skipped (out.weight [1, 4], out.bias [1])" "init report"
contains "$work/out" "acc 100.00%" "fine-tuned head learns xor"
expect 2 "--init with --resume" "$nodeflow" train "$work/head2.nfg" --data "csv:$src/tests/data/xor.csv,label=2" \
    --init "$work/xor.st" --resume "$work/x.ckpt"

# --freeze keeps a node's parameters: the hidden layer of the tuned model
# computes what the xor model's does
expect 0 "fine-tune with the hidden layer frozen" "$nodeflow" train "$work/head2.nfg" \
    --data "csv:$src/tests/data/xor.csv,label=2" --epochs 50 --init "$work/xor.st" --freeze hidden --out "$work/frozen.st" --quiet
printf 'nodeflow 1\nx = input shape=2\nhidden = linear x out=4\no = output hidden\n' >"$work/probe.nfg"
printf '0,0\n0,1\n1,0\n1,1\n' >"$work/probe.csv"
"$nodeflow" infer "$work/probe.nfg" --weights "$work/xor.st" --allow-extra --input "$work/probe.csv" >"$work/h_before" 2>&1
"$nodeflow" infer "$work/probe.nfg" --weights "$work/frozen.st" --allow-extra --input "$work/probe.csv" >"$work/h_after" 2>&1
if [ -s "$work/h_before" ] && cmp -s "$work/h_before" "$work/h_after"; then ok; else bad "--freeze hidden changed the hidden layer"; fi
expect 2 "--freeze a node without parameters" "$nodeflow" train "$work/head2.nfg" \
    --data "csv:$src/tests/data/xor.csv,label=2" --freeze h --epochs 1
# eval refuses a class label outside the model's classes, naming file and row
printf 'a,b,c\n0,0,0\n0,1,1\n1,0,5\n1,1,0\n' >"$work/badlabel.csv"
expect 2 "eval with a class label out of range" "$nodeflow" eval "$work/head2.nfg" --weights "$work/head2.st" \
    --data "csv:$work/badlabel.csv,label=c"
contains "$work/err" "badlabel.csv:4: label 5, not one of the 2 class indices 0 .. 1" "eval label check"

# Pooling in ceil mode with a kernel wider than the padded input: one
# window, as PyTorch (MaxPool1d(4, 2, ceil_mode=True) of [1, 5, 2] is [5];
# AvgPool1d(2, 2, padding=1, ceil_mode=True) of [1, 5, 2, 3, 4] is
# [0.5, 3.5, 3.5]); the weights file is one of a model without parameters
printf 'nodeflow 1\nx = input shape=1x3\np = maxpool1d x kernel=4 stride=2 ceil_mode=true\no = output p\n' >"$work/pool.nfg"
printf '1,5,2\n' >"$work/pool.csv"
expect 0 "ceil-mode pooling over a short input" "$nodeflow" infer "$work/pool.nfg" --weights "$work/frozen.st" --allow-extra \
    --input "$work/pool.csv"
contains "$work/out" "5" "one window of the whole input"
printf 'nodeflow 1\nx = input shape=1x5\np = avgpool1d x kernel=2 stride=2 padding=1 ceil_mode=true include_pad=true\no = output p\n' \
    >"$work/pool.nfg"
printf '1,5,2,3,4\n' >"$work/pool.csv"
expect 0 "ceil-mode average pooling with padding" "$nodeflow" infer "$work/pool.nfg" --weights "$work/frozen.st" \
    --allow-extra --input "$work/pool.csv"
contains "$work/out" "0.5,3.5,3.5" "PyTorch's windows and divisors"

# One precedence for every setting: an option over --set over the file
# (--set lr once lost to the file's lr).
xor_data="csv:$src/tests/data/xor.csv,label=2"
expect 0 "xor with --lr" "$nodeflow" train "$xor" --data "$xor_data" --epochs 20 --lr 0.7 --out "$work/lr_flag.st" --quiet
expect 0 "xor with --set lr" "$nodeflow" train "$xor" --data "$xor_data" --epochs 20 --set lr=0.7 --out "$work/lr_set.st" --quiet
expect 0 "xor with the file's lr" "$nodeflow" train "$xor" --data "$xor_data" --epochs 20 --out "$work/lr_file.st" --quiet
if cmp -s "$work/lr_flag.st" "$work/lr_set.st"; then ok; else bad "--set lr=0.7 and --lr 0.7 train different weights"; fi
if cmp -s "$work/lr_file.st" "$work/lr_set.st"; then bad "--set lr=0.7 was ignored (the file's lr won)"; else ok; fi
expect 0 "option over --set" "$nodeflow" train "$xor" --data "$xor_data" --epochs 20 --set lr=0.1 --lr 0.7 \
    --out "$work/lr_both.st" --quiet
if cmp -s "$work/lr_flag.st" "$work/lr_both.st"; then ok; else bad "--lr did not win over --set lr"; fi
expect 0 "--set of a table setting" "$nodeflow" train "$xor" --data "$xor_data" --set epochs=3 --set batch=2
contains "$work/out" "batch 2, 3 epochs" "--set batch and epochs"

# A setting given on a resume is applied with a notice, never dropped
expect 0 "checkpoint for a resume" "$nodeflow" train "$xor" --data "$xor_data" --epochs 5 --checkpoint "$work/x.ckpt" --quiet
expect 0 "plain resume" "$nodeflow" train "$xor" --data "$xor_data" --epochs 10 --resume "$work/x.ckpt" \
    --out "$work/resumed.st" --quiet
expect 0 "resume with --lr" "$nodeflow" train "$xor" --data "$xor_data" --epochs 10 --resume "$work/x.ckpt" \
    --lr 0.01 --out "$work/resumed_lr.st" --quiet
contains "$work/err" "lr = 0.01 replaces the checkpoint's 0.5" "resume with --lr says so"
if cmp -s "$work/resumed.st" "$work/resumed_lr.st"; then bad "--lr on --resume was ignored"; else ok; fi
expect 0 "checkpoint with a schedule" "$nodeflow" train "$xor" --data "$xor_data" --epochs 5 --schedule step \
    --checkpoint "$work/xs.ckpt" --quiet
expect 1 "resume with --lr under a schedule" "$nodeflow" train "$xor" --data "$xor_data" --epochs 10 \
    --schedule step --resume "$work/xs.ckpt" --lr 0.01
contains "$work/err" "cannot apply to a resumed run that follows a schedule" "lr under a schedule refused"

# A checkpoint is also a weights file (its extra tensors are its own)
expect 0 "eval on a checkpoint's weights" "$nodeflow" eval "$xor" --weights "$work/x.ckpt" --data "$xor_data"

# One definition of accuracy: training's validation and eval agree on a
# model whose single score is a probability (sigmoid + mse)
expect 0 "train xor by mse" "$nodeflow" train "$src/tests/data/xor_mse.nfg" --data "$xor_data" --val "$xor_data" \
    --out "$work/xor_mse.st"
val_acc=$(tail -n 2 "$work/out" | head -n 1 | sed -n 's/.*val loss [0-9.]* acc \([0-9.]*\)%.*/\1/p')
expect 0 "eval xor by mse" "$nodeflow" eval "$src/tests/data/xor_mse.nfg" --weights "$work/xor_mse.st" --data "$xor_data"
eval_acc=$(sed -n 's/.*accuracy \([0-9.]*\)%.*/\1/p' "$work/out" | head -n 1)
if [ -n "$val_acc" ] && [ "$val_acc" = "$eval_acc" ] && [ "$eval_acc" = "100.00" ]; then ok
else bad "accuracy: train --val says '$val_acc', eval says '$eval_acc' (expected 100.00 from both)"; fi

# The session from C trains what nodeflow train trains, byte for byte
if [ -n "$train_session" ]; then
    expect 0 "a session from C" "$train_session" "$src/tests/data/xor_session.nfg" "$xor_data" "$xor_data" "$work/c.st"
    expect 0 "the same from the command line" "$nodeflow" train "$src/tests/data/xor_session.nfg" --data "$xor_data" \
        --val "$xor_data" --out "$work/cli.st"
    contains "$work/out" "early stop" "the session stops early"
    if cmp -s "$work/c.st" "$work/cli.st"; then ok; else bad "the C session and nodeflow train wrote different weights"; fi
fi

# Early stopping's patience is in the checkpoint: stopped at epoch 8 (two
# epochs past the best) and resumed, the run stops at epoch 10 with the
# weights of the run that was never stopped
patience="$src/tests/data/xor_patience.nfg"
expect 0 "patience, uninterrupted" "$nodeflow" train "$patience" --data "$xor_data" --val "$xor_data" --out "$work/p_all.st"
contains "$work/out" "early stop" "patience: the reference run stops early"
last=$(grep -o 'epoch [0-9]*/80' "$work/out" | tail -n 1)
expect 0 "patience, first part" "$nodeflow" train "$patience" --data "$xor_data" --val "$xor_data" --epochs 8 \
    --checkpoint "$work/p.ckpt" --quiet
expect 0 "patience, resumed" "$nodeflow" train "$patience" --data "$xor_data" --val "$xor_data" --resume "$work/p.ckpt" \
    --out "$work/p_resumed.st"
contains "$work/out" "early stop" "patience: the resumed run stops early"
if [ "$(grep -o 'epoch [0-9]*/80' "$work/out" | tail -n 1)" = "$last" ]; then ok
else bad "patience: the resumed run ended at another epoch than $last"; fi
if cmp -s "$work/p_all.st" "$work/p_resumed.st"; then ok; else bad "patience: resumed weights differ from the uninterrupted run's"; fi

# The same failure, the same exit code: no temporary file for --out or --checkpoint
expect 2 "--out in a missing directory" "$nodeflow" train "$xor" --data "$xor_data" --epochs 1 \
    --out "$work/missing/w.st" --quiet
expect 2 "--checkpoint in a missing directory" "$nodeflow" train "$xor" --data "$xor_data" --epochs 1 \
    --checkpoint "$work/missing/w.ckpt" --quiet

# ONNX (a build that reads it): infer runs a .onnx directly; import writes a
# model file and weights that give the same rows, and with --loss a model
# that trains; a broken file is an input error
if "$nodeflow" check "$src/tests/fixtures/onnx/mlp.onnx" >/dev/null 2>&1; then
    onnx="$src/tests/fixtures/onnx/mlp.onnx"
    printf '0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1.0,1.1,1.2\n-1,0,1,-1,0,1,-1,0,1,-1,0,1\n' > "$work/x12.csv"
    expect 0 "infer a .onnx" "$nodeflow" infer "$onnx" --input "$work/x12.csv"
    cp "$work/out" "$work/onnx_rows.txt"
    expect 0 "import a .onnx" "$nodeflow" import "$onnx" -o "$work/mlp.nfg" --weights-out "$work/mlp.st"
    expect 0 "infer the imported model" "$nodeflow" infer "$work/mlp.nfg" --weights "$work/mlp.st" --input "$work/x12.csv"
    if cmp -s "$work/out" "$work/onnx_rows.txt"; then ok; else bad "imported rows differ from the .onnx's"; fi
    expect 0 "check a .onnx" "$nodeflow" check "$src/tests/fixtures/onnx/lenet_bn.onnx"
    contains "$work/out" "c1_Conv" "ONNX's node names kept"
    expect 0 "import with a loss" "$nodeflow" import "$src/tests/fixtures/onnx/lenet_bn.onnx" -o "$work/lenet.nfg" \
        --weights-out "$work/lenet.st" --loss cross_entropy
    expect 0 "fine-tune the imported model" "$nodeflow" train "$work/lenet.nfg" --init "$work/lenet.st" \
        --data fashion-mnist:test --steps 3 --set batch=16 --quiet --out "$work/lenet_tuned.st"
    expect 0 "eval a .onnx (W2 trained in PyTorch)" "$nodeflow" eval "$src/tests/fixtures/onnx/w2_lenet.onnx" \
        --data fashion-mnist:test
    contains "$work/out" "accuracy 82.65%" "the imported W2's accuracy is PyTorch's"
    expect 0 "export the imported model" "$nodeflow" export "$work/mlp.nfg" --weights "$work/mlp.st" -o "$work/again.onnx"
    expect 0 "infer the exported model" "$nodeflow" infer "$work/again.onnx" --input "$work/x12.csv"
    if cmp -s "$work/out" "$work/onnx_rows.txt"; then ok; else bad "the exported model's rows differ"; fi
    expect 0 "an LSTM's weights" "$nodeflow" train "$src/models/char_lstm.nfg" --data text:/usr/share/games/fortunes \
        --steps 1 --quiet --out "$work/lstm.st"
    expect 0 "export an LSTM" "$nodeflow" export "$src/models/char_lstm.nfg" --weights "$work/lstm.st" -o "$work/lstm.onnx"
    printf '1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63,64\n' > "$work/ids.csv"
    expect 0 "infer the LSTM" "$nodeflow" infer "$src/models/char_lstm.nfg" --weights "$work/lstm.st" --input "$work/ids.csv"
    cp "$work/out" "$work/lstm_rows.txt"
    expect 0 "infer its export" "$nodeflow" infer "$work/lstm.onnx" --input "$work/ids.csv"
    if cmp -s "$work/out" "$work/lstm_rows.txt"; then ok; else bad "the exported LSTM's rows differ"; fi
    expect 0 "a transformer's weights" "$nodeflow" train "$src/models/char_transformer.nfg" \
        --data text:/usr/share/games/fortunes --steps 1 --quiet --out "$work/tf.st"
    expect 0 "export attention" "$nodeflow" export "$src/models/char_transformer.nfg" --weights "$work/tf.st" \
        -o "$work/tf.onnx"
    expect 0 "infer the exported transformer" "$nodeflow" infer "$work/tf.onnx" --input "$work/ids.csv"
    expect 0 "an unrolled RNN's weights" "$nodeflow" train "$src/models/char_rnn_primitives.nfg" \
        --data text:/usr/share/games/fortunes --steps 1 --quiet --out "$work/rnnp.st"
    expect 1 "export a memory node's flow" "$nodeflow" export "$src/models/char_rnn_primitives.nfg" \
        --weights "$work/rnnp.st" -o "$work/no.onnx"
    contains "$work/err" "are not exported" "the refusal names why"
    [ ! -e "$work/no.onnx" ] && ok || bad "a refused export left a file"
    backend=/usr/share/libonnx-testdata/data/node
    if [ -d "$backend/test_add_bcast" ]; then # (libonnx-testdata: tools/setup-debian --test)
        # y = [1, 2, 3, 4, 5] as a .npy (float32, little-endian)
        { printf '\223NUMPY\001\000\166\000'
          printf "{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }%*s\n" 60 ''
          printf '\000\000\200\077\000\000\000\100\000\000\100\100\000\000\200\100\000\000\240\100'; } > "$work/y5.npy"
        expect 0 "import binding an input" "$nodeflow" import "$backend/test_add_bcast/model.onnx" -o "$work/bc.nfg" \
            --weights-out "$work/bc.st" --bind y="$work/y5.npy"
        printf '0,0,0,0,0,1,1,1,1,1,0,0,0,0,0,0,0,0,0,0\n' > "$work/x20.csv"
        expect 0 "infer the bound model" "$nodeflow" infer "$work/bc.nfg" --weights "$work/bc.st" --input "$work/x20.csv"
        contains "$work/out" "1,2,3,4,5,2,3,4,5,6,1,2,3,4,5,1,2,3,4,5" "the bound input is added"
        expect 2 "bind an input the model lacks" "$nodeflow" import "$backend/test_add_bcast/model.onnx" \
            -o "$work/bc.nfg" --weights-out "$work/bc.st" --bind nope="$work/y5.npy"
        contains "$work/err" "no input 'nope' to bind" "the missing input is named"
        expect 2 "axis 0 as data, batched" "$nodeflow" import "$backend/test_concat_2d_axis_0/model.onnx" \
            -o "$work/cc.nfg" --weights-out "$work/cc.st"
        expect 0 "axis 0 as data, whole inputs" "$nodeflow" import "$backend/test_concat_2d_axis_0/model.onnx" \
            -o "$work/cc.nfg" --weights-out "$work/cc.st" --whole-inputs
        contains "$work/cc.nfg" "concat" "the whole-input model joins along its axis 0"
    fi
    printf 'not a model' > "$work/bad.onnx"
    expect 2 "a broken .onnx" "$nodeflow" infer "$work/bad.onnx" --input "$work/x12.csv"
    contains "$work/err" "not an ONNX model" "the broken file's error"
fi

finish_checks cli
