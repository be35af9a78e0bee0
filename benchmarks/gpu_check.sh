#!/usr/bin/env bash
# GPU check in a few minutes: the CUDA-marked tests, search throughput in fp32 against
# bf16 AMP + channels_last, and a real search and train epoch of the CIFAR-10 config
# (eager and runtime.compile: max-autotune, torchvision and DALI); one table at the end.
# Without CUDA it says so and exits 0 (nothing to check).
#   bash benchmarks/gpu_check.sh            (PYTHON=... to pick the interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"

if ! "$PYTHON" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    echo "gpu_check: skipped: no CUDA device is visible (run it on a GPU machine)"
    exit 0
fi

log=$(mktemp -d)
"$PYTHON" -c 'import torch; print(torch.cuda.get_device_name(0), "| torch", torch.__version__)' \
    > "$log/device"
"$PYTHON" -m pytest -m cuda -q -p no:cacheprovider tests 2>&1 | tee "$log/tests" || true
"$PYTHON" benchmarks/search_step.py --device cuda --compare \
    --layers 20 --channels 36 --batch 96 --steps 10 --warmup 3 2>&1 | tee "$log/search"
"$PYTHON" benchmarks/epoch.py --params params/cifar10.yaml --device cuda \
    --images 10240 --test-images 1024 --compile off max-autotune 2>&1 | tee "$log/epoch"

echo
echo "| check | result |"
echo "| --- | --- |"
echo "| device | $(cat "$log/device") |"
echo "| CUDA tests | $(tail -n 1 "$log/tests") |"
grep -E '^(fp32|bf16)' "$log/search" | sed -E 's/ +/ /g; s/^([^ ]+ [^ ]+( \+ channels_last)?) (.*)$/| search \1 | \3 |/'
echo "| search speed-up | $(grep '^speed-up' "$log/search" | cut -d: -f2-) |"
grep -E '^(data.loader|  )' "$log/epoch" | sed -E 's/ +/ /g; s/^ ?(.*)$/| epoch | \1 |/'
