#!/usr/bin/env bash
# The GPU checks in one call (a lent GPU machine's time is short): the demo main job on CUDA,
# the KD overhead on demo, and the scale benchmark up to 1M items. Writes every output under
# ${OUT:-bench-gpu-out}/ and prints the card's name first.
#
#     bash bench/gpu.sh            # on the GPU machine, from the repository root
set -uo pipefail
out="${OUT:-bench-gpu-out}"
mkdir -p "$out"
export RCEKD_HOME="$out/home"

if ! python -c "import rcekd_core" 2>/dev/null; then
  pip install -q -e . >"$out/install.log" 2>&1 || { echo "install failed: see $out/install.log"; exit 1; }
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/card.txt"
python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))" \
  | tee -a "$out/card.txt"

step() {  # step NAME SECONDS COMMAND...: run one check with a time limit, keep its output
  local name=$1 limit=$2
  shift 2
  echo "== $name"
  local t0=$SECONDS
  timeout "$limit" "$@" >"$out/$name.log" 2>&1
  echo "   rc $? in $((SECONDS - t0)) s"
  tail -n 25 "$out/$name.log"
}

step distill-demo 240 rcekd distill --preset demo --device cuda --run-dir "$out/demo-run"
step kd-overhead 120 python bench/kd_overhead.py --preset demo --epochs 3 --device cuda
step scale 300 python bench/scale.py --device cuda --sizes 10000x10000,30000x100000,100000x1000000
