#!/bin/sh
# Files as a careful Unix tool treats them (include/nodeflow/files.h):
# inputs that are not regular files are refused, never waited on; outputs
# honour the umask, keep a replaced file's mode, write through symbolic
# links, refuse devices, FIFOs and directories, are checked before any
# training, are never the same file twice; stale temporary files are
# cleaned; every failed write, standard output and logs included, exits
# non-zero naming the path and the reason.
# Usage: tests/files.sh PATH/TO/nodeflow SOURCE_DIR
set -u
nodeflow=$1
src=$2
. "$src/tests/harness.sh"
start_checks files
expect_timeout=20 # a command that waits on a FIFO fails here instead of hanging

mode_of() { stat -c %a "$1"; }

xor="$src/models/xor.nfg"
data="csv:$src/tests/data/xor.csv,label=2"
short="--epochs 2 --quiet"

# ---- inputs that are not regular files ----
mkfifo "$work/fifo.nfg"
expect 2 "a FIFO as the model" "$nodeflow" check "$work/fifo.nfg"
contains "$work/err" "a FIFO (named pipe); nodeflow reads only regular files" "FIFO model"
expect 2 "a directory as the model" "$nodeflow" check "$work"
contains "$work/err" "is a directory; nodeflow reads only regular files" "directory model"
expect 2 "a device as the data" "$nodeflow" train "$xor" --data "csv:/dev/zero,label=2" $short
contains "$work/err" "is a character device; nodeflow reads only regular files" "device data"
expect 2 "a FIFO as the data" "$nodeflow" train "$xor" --data "csv:$work/fifo.nfg,label=2" $short
contains "$work/err" "FIFO" "FIFO data"
expect 0 "train xor" "$nodeflow" train "$xor" --data "$data" $short --out "$work/w.st"
expect 2 "a FIFO as the weights" "$nodeflow" eval "$xor" --weights "$work/fifo.nfg" --data "$data"
contains "$work/err" "FIFO" "FIFO weights"

printf '0,0\n0,1\n1,0\n1,1\n' >"$work/features.csv"

# a chain of 200,000 nodes: name lookup is a hash table, not a scan (a
# scan took 15 s for 50,000 nodes and grew as the square)
awk 'BEGIN { print "nodeflow 1"; print "n0 = input shape=4"; for (i = 1; i < 200000; i++) printf "n%d = relu n%d\n", i, i - 1 }' \
    >"$work/chain.nfg"
expect 0 "a 200,000-node chain checks" "$nodeflow" check "$work/chain.nfg"
contains "$work/out" "200000 nodes" "chain checked"
rm -f "$work/chain.nfg"

# ---- outputs: modes ----
rm -f "$work/w.st"
(umask 077 && "$nodeflow" train "$xor" --data "$data" $short --out "$work/w.st")
[ "$(mode_of "$work/w.st")" = 600 ] && ok || bad "umask 077: mode $(mode_of "$work/w.st"), expected 600"
rm -f "$work/w.st"
(umask 022 && "$nodeflow" train "$xor" --data "$data" $short --out "$work/w.st")
[ "$(mode_of "$work/w.st")" = 644 ] && ok || bad "umask 022: mode $(mode_of "$work/w.st"), expected 644"
chmod 640 "$work/w.st"
(umask 000 && "$nodeflow" train "$xor" --data "$data" $short --out "$work/w.st")
[ "$(mode_of "$work/w.st")" = 640 ] && ok || bad "a replaced file keeps its mode: $(mode_of "$work/w.st"), expected 640"

# ---- outputs: links, devices, FIFOs, directories ----
echo old >"$work/target.st"
ln -s target.st "$work/link.st"
expect 0 "--out through a symbolic link" "$nodeflow" train "$xor" --data "$data" $short --out "$work/link.st"
[ -L "$work/link.st" ] && ok || bad "the symbolic link was replaced by a file"
cmp -s "$work/w.st" "$work/target.st" && ok || bad "the link's target was not rewritten"
ln -s missing.st "$work/dangling.st"
expect 2 "--out a dangling link" "$nodeflow" train "$xor" --data "$data" $short --out "$work/dangling.st"
contains "$work/err" "a symbolic link to a missing file" "dangling link"
expect 2 "--out a device" "$nodeflow" train "$xor" --data "$data" $short --out /dev/null
contains "$work/err" "is a character device; nodeflow writes only regular files" "device out"
[ -c /dev/null ] && ok || bad "/dev/null is no longer a device"
expect 2 "--out a FIFO" "$nodeflow" train "$xor" --data "$data" $short --out "$work/fifo.nfg"
expect 2 "--out a directory" "$nodeflow" train "$xor" --data "$data" $short --out "$work"
expect 2 "--out in a missing directory" "$nodeflow" train "$xor" --data "$data" --epochs 100000 --quiet \
    --out "$work/no/such/dir/w.st"
contains "$work/err" "no/such/dir" "missing directory named"
expect 2 "--checkpoint in a missing directory" "$nodeflow" train "$xor" --data "$data" --epochs 100000 --quiet \
    --checkpoint "$work/none/c.ckpt"
expect 2 "--log as a directory" "$nodeflow" train "$xor" --data "$data" --epochs 100000 --quiet --log "$work"
expect 2 "infer --output in a missing directory" "$nodeflow" infer "$xor" --weights "$work/w.st" \
    --input "$work/features.csv" --output "$work/none/o.csv"

# ---- the same file twice ----
expect 2 "--out and --checkpoint the same" "$nodeflow" train "$xor" --data "$data" $short \
    --checkpoint "$work/p.st" --out "$work/p.st"
contains "$work/err" "--out and --checkpoint name the same file" "same path"
expect 2 "--out and --checkpoint the same through a link" "$nodeflow" train "$xor" --data "$data" $short \
    --checkpoint "$work/target.st" --out "$work/link.st"
expect 0 "a checkpoint" "$nodeflow" train "$xor" --data "$data" --epochs 1 --quiet --checkpoint "$work/c.ckpt"
expect 2 "--out over the checkpoint resumed" "$nodeflow" train "$xor" --data "$data" --epochs 2 --quiet \
    --resume "$work/c.ckpt" --out "$work/c.ckpt"
contains "$work/err" "would overwrite the checkpoint given to --resume" "resume and out"

# ---- a resume that would train nothing ----
expect 2 "resume past the epochs" "$nodeflow" train "$xor" --data "$data" --epochs 1 --quiet --resume "$work/c.ckpt"
contains "$work/err" "nothing is left to train" "resume trains nothing"

# ---- stale temporary files ----
echo junk >"$work/w.st.nftmp.999999.1"
touch -d '2020-01-01' "$work/w.st.nftmp.999999.1"
echo recent >"$work/w.st.nftmp.999998.1"
touch -d '2099-01-01' "$work/w.st.nftmp.999998.1"
echo other >"$work/x.st.nftmp.999999.1"
touch -d '2020-01-01' "$work/x.st.nftmp.999999.1"
expect 0 "a save beside stale temporaries" "$nodeflow" train "$xor" --data "$data" $short --out "$work/w.st"
[ ! -e "$work/w.st.nftmp.999999.1" ] && ok || bad "a stale temporary file of w.st was left"
[ -e "$work/w.st.nftmp.999998.1" ] && ok || bad "a temporary file newer than the process was removed"
[ -e "$work/x.st.nftmp.999999.1" ] && ok || bad "another file's temporary was removed"
[ "$(ls "$work" | grep -c 'w\.st\.nftmp')" = 1 ] && ok || bad "temporary files left by the save: $(ls "$work")"

# ---- write errors ----
if [ -w /dev/full ]; then
    expect 1 "infer > /dev/full" sh -c "'$nodeflow' infer '$xor' --weights '$work/w.st' --input '$work/features.csv' >/dev/full"
    contains "$work/err" "cannot write to standard output: No space left on device" "stdout full"
    expect 1 "eval --json > /dev/full" sh -c "'$nodeflow' eval '$xor' --weights '$work/w.st' --data '$data' --json >/dev/full"
    expect 1 "check > /dev/full" sh -c "'$nodeflow' check '$xor' >/dev/full"
    expect 1 "--log /dev/full" "$nodeflow" train "$xor" --data "$data" $short --log /dev/full
    contains "$work/err" "/dev/full: cannot write the log: No space left on device" "log on a full device"
fi

# a log that fails on its last line (the file-size limit; SIGXFSZ ignored)
expect 1 "a log write that fails at the end" sh -c "trap '' XFSZ; ulimit -f 1; '$nodeflow' train '$xor' --data '$data' \
    --epochs 40 --quiet --log '$work/small.log'"
contains "$work/err" "small.log: cannot write the log: File too large" "log write failure"
expect 2 "--log over the data" "$nodeflow" train "$xor" --data "csv:$work/features.csv" --epochs 1 --log "$work/features.csv"
contains "$work/err" "would overwrite a file the run reads" "log over data"
cp "$xor" "$work/m.nfg"
expect 2 "--out over the model" "$nodeflow" train "$work/m.nfg" --data "$data" --epochs 1 --out "$work/m.nfg"
cmp -s "$xor" "$work/m.nfg" && ok || bad "the model file was overwritten"
expect 0 "--log to standard error's terminal or pipe" sh -c "'$nodeflow' train '$xor' --data '$data' $short --log /dev/stderr 2>/dev/null"

# ---- non-finite weights ----
python_free_nan() { # w.st with its first float replaced by a NaN (bytes 00 00 c0 7f)
    header=$(od -An -tu8 -N8 "$work/w.st" | tr -d ' ')
    cp "$work/w.st" "$work/nan.st"
    printf '\000\000\300\177' | dd of="$work/nan.st" bs=1 seek=$((8 + header)) conv=notrunc 2>/dev/null
}
python_free_nan
expect 2 "NaN weights" "$nodeflow" eval "$xor" --weights "$work/nan.st" --data "$data"
contains "$work/err" "element 0 is nan, not a finite float32" "NaN weights refused"
expect 0 "NaN weights allowed" "$nodeflow" eval "$xor" --weights "$work/nan.st" --data "$data" --json --allow-nonfinite
contains "$work/out" '"loss": null' "JSON without NaN"

# ---- bad labels and features name the file and row ----
printf 'nodeflow 1\nx = input shape=2\ny = input shape=scalar\nf = linear x out=3\ns = output f\nloss = cross_entropy s y\n' \
    >"$work/c3.nfg"
printf 'a,b,c\n0,0,0\n0,1,1\n1,0,-1\n1,1,2\n' >"$work/c3.csv"
expect 2 "a negative class label" "$nodeflow" train "$work/c3.nfg" --data "csv:$work/c3.csv,label=c" $short
contains "$work/err" "c3.csv:4: label -1, not one of the 3 class indices 0 .. 2" "negative label"
printf 'a,b,c\n0,0,0\n0,1,1.5\n' >"$work/c3.csv"
expect 2 "a fractional class label" "$nodeflow" train "$work/c3.nfg" --data "csv:$work/c3.csv,label=c" $short
contains "$work/err" "c3.csv:3: label 1.5, not one of the 3 class indices" "fractional label"
printf 'a,b,c\n0,0,0\n0,nan,1\n' >"$work/c3.csv"
expect 2 "NaN in the features" "$nodeflow" train "$work/c3.nfg" --data "csv:$work/c3.csv,label=c" $short
contains "$work/err" "c3.csv:3:3: field 2 is 'nan', not a finite number" "NaN feature"

finish_checks files
