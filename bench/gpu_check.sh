#!/usr/bin/env bash
# GPU speed check, in one call of about ten minutes: every method at its paper resolution, zoo in bf16-mixed +
# channels-last + torch.compile next to the re-created official loop in fp32 eager (same GPU, same process,
# interleaved), with MFU; then zoo eager bf16 for the compile gain. Prints the device, then one table per run.
#
#     bash bench/gpu_check.sh                 # every method
#     bash bench/gpu_check.sh pix2pix cyclegan
#
# Needs a CUDA GPU and the package installed (pip install -e .). Results go to stdout and bench-gpu-<time>.log.
set -euo pipefail
cd "$(dirname "$0")"
log="bench-gpu-$(date +%Y%m%d-%H%M%S).log"
methods=("$@")
python - <<'PY' | tee "$log"
import torch
assert torch.cuda.is_available(), "bench/gpu_check.sh needs a CUDA GPU"
print("device:", torch.cuda.get_device_name(0), "| torch", torch.__version__, "| CUDA", torch.version.cuda)
PY
args=(--device cuda --iterations 10 --warmup 2 --threads 8)
if [ ${#methods[@]} -gt 0 ]; then args+=(--methods "${methods[@]}"); fi
echo "== zoo bf16-mixed + channels-last + compile vs official fp32 eager" | tee -a "$log"
timeout 420 python bench_methods.py "${args[@]}" --precision bf16-mixed --channels-last --compile --reference 2>&1 | tee -a "$log" || true
echo "== zoo bf16-mixed eager (no compile)" | tee -a "$log"
timeout 150 python bench_methods.py "${args[@]}" --precision bf16-mixed 2>&1 | tee -a "$log" || true
echo "log: bench/$log"
