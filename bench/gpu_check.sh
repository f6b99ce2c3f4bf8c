#!/usr/bin/env bash
# GPU speed check, in one call of about ten minutes: every method at its paper resolution, zoo in bf16-mixed +
# channels-last + torch.compile next to the re-created official loop in fp32 eager (same GPU, same process,
# interleaved), with MFU; then zoo eager bf16 for the compile gain. Prints the device, then one table per run.
#
#     bash bench/gpu_check.sh                 # every method
#     bash bench/gpu_check.sh pix2pix cyclegan
#
# Needs a CUDA GPU and zoo importable: installed (pip install -e .), or, on a machine without internet whose Python
# has PyTorch, Lightning, timm and torchvision, the wheels bench/offline_wheels.sh wrote to .whl/ (installed here into
# /tmp/zoo-site, which goes on PYTHONPATH with the repository). Results go to stdout and to bench-gpu-<time>.log in
# $GPU_CHECK_LOG_DIR (default: bench/).
set -euo pipefail
cd "$(dirname "$0")"
repo="$(cd .. && pwd)"
if [ -d "$repo/.whl" ] && ls "$repo"/.whl/*.whl > /dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/zoo-site \
        "$repo"/.whl/*.whl
    export PYTHONPATH="/tmp/zoo-site:$repo${PYTHONPATH:+:$PYTHONPATH}"
fi
log="${GPU_CHECK_LOG_DIR:-$PWD}/bench-gpu-$(date +%Y%m%d-%H%M%S).log"
methods=("$@")
python3 - <<'PY' | tee "$log"
import torch
import zoo  # fails here, not after a minute of benchmarking, when a dependency is missing
assert torch.cuda.is_available(), "bench/gpu_check.sh needs a CUDA GPU"
print("device:", torch.cuda.get_device_name(0), "| torch", torch.__version__, "| CUDA", torch.version.cuda,
      "| zoo", zoo.__version__)
PY
args=(--device cuda --iterations 10 --warmup 2 --threads 8)
if [ ${#methods[@]} -gt 0 ]; then args+=(--methods "${methods[@]}"); fi
echo "== zoo bf16-mixed + channels-last + compile vs official fp32 eager" | tee -a "$log"
timeout 420 python3 bench_methods.py "${args[@]}" --precision bf16-mixed --channels-last --compile --reference 2>&1 | tee -a "$log" || true
echo "== zoo bf16-mixed eager (no compile)" | tee -a "$log"
timeout 150 python3 bench_methods.py "${args[@]}" --precision bf16-mixed 2>&1 | tee -a "$log" || true
echo "log: $log"
