#!/bin/sh
# Imported ONNX models against the same models written as .nfg (issue 16's
# check 5), `nodeflow eval` at 1 and 2 threads, interleaved rounds; prints
# the medians of the wall times and their ratio. Run it alone on the machine.
#   W2: LeNet-5 exported by PyTorch (tests/fixtures/onnx/w2_lenet.onnx) and
#       models/fashion_lenet.nfg, on the 60,000 training images;
#   W3: models/fashion_cnn.nfg written in PyTorch and exported here (opset
#       14, dynamic batch; /usr/bin/python3 with torch), and the .nfg, on the
#       10,000 test images.
# Weights: the speed does not depend on their values, so the .nfg models
# take theirs from one training step.
#   bench/onnx_speed.sh [ROUNDS]    default 5; needs a build in build/
set -eu
cd "$(dirname "$0")/.."
rounds=${1:-5}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 - "$tmp/w3.onnx" <<'EOF'
import sys
import torch
import torch.nn as nn
import torch.nn.functional as F


class W3(nn.Module):  # models/fashion_cnn.nfg
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 32, 3, padding=1), nn.Conv2d(32, 64, 3, padding=1)
        self.fc1, self.fc2 = nn.Linear(64 * 14 * 14, 128), nn.Linear(128, 10)

    def forward(self, x):
        x = F.dropout(F.max_pool2d(F.relu(self.conv2(F.relu(self.conv1(x)))), 2), 0.25, self.training)
        return self.fc2(F.dropout(F.relu(self.fc1(x.flatten(1))), 0.5, self.training))


torch.manual_seed(0)
torch.onnx.export(W3().eval(), torch.randn(2, 1, 28, 28), sys.argv[1], input_names=["x"], output_names=["y"],
                  opset_version=14, dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
EOF
build/nodeflow train models/fashion_lenet.nfg --data fashion-mnist:test --steps 1 --quiet --out "$tmp/w2.st"
build/nodeflow train models/fashion_cnn.nfg --data fashion-mnist:test --steps 1 --quiet --out "$tmp/w3.st"
seconds() { # wall time of a command, in seconds
    start=$(date +%s.%N)
    "$@" >/dev/null
    end=$(date +%s.%N)
    echo "$end - $start" | bc
}
for r in $(seq "$rounds"); do
    for t in 1 2; do
        echo "W2 onnx $t $(seconds build/nodeflow eval tests/fixtures/onnx/w2_lenet.onnx --data fashion-mnist:train --threads $t)" >>"$tmp/times"
        echo "W2 nfg $t $(seconds build/nodeflow eval models/fashion_lenet.nfg --weights "$tmp/w2.st" --data fashion-mnist:train --threads $t)" >>"$tmp/times"
        echo "W3 onnx $t $(seconds build/nodeflow eval "$tmp/w3.onnx" --data fashion-mnist:test --threads $t)" >>"$tmp/times"
        echo "W3 nfg $t $(seconds build/nodeflow eval models/fashion_cnn.nfg --weights "$tmp/w3.st" --data fashion-mnist:test --threads $t)" >>"$tmp/times"
    done
done
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
for w in W2 W3; do
    for t in 1 2; do
        o=$(awk -v w=$w -v t=$t '$1 == w && $2 == "onnx" && $3 == t { print $4 }' "$tmp/times" | median)
        n=$(awk -v w=$w -v t=$t '$1 == w && $2 == "nfg" && $3 == t { print $4 }' "$tmp/times" | median)
        echo "$w, $t thread(s): imported .onnx $o s, .nfg $n s, ratio $(echo "scale=3; $o / $n" | bc)"
    done
done
