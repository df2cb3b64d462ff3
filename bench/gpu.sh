#!/usr/bin/env bash
# The GPU checks in one call (a lent GPU machine's time is short): the demo main job on CUDA,
# the KD overhead on demo, and the scale benchmark up to 1M items. Prints the card's name first;
# keeps a few files under ${OUT:-bench-gpu-out}/ (the device tool brings back 8 at most): the
# card, each step's log and the demo run's results.csv. Nothing is installed: the machine is
# offline, so the code runs from this checkout with the image's python3 and its packages
# (torch, typer, rich, pandas, pyyaml; the TUI's textual is not needed for these steps).
#
#     bash bench/gpu.sh            # on the GPU machine, from the repository root (about 3-5 min)
set -uo pipefail
out="${OUT:-bench-gpu-out}"
mkdir -p "$out"
work="$(mktemp -d)"  # the teacher cache and the run directory: many files, kept off $OUT
export RCEKD_HOME="$work/home" PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY="$(command -v python3 || command -v python)"

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/card.txt"
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))" \
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

# limits sum to 540 s: inside one 600 s device command even if every step hangs
step distill-demo 180 "$PY" -m rcekd_tui distill --preset demo --device cuda --run-dir "$work/demo-run"
cp "$work/demo-run/results.csv" "$out/demo-results.csv" 2>/dev/null
step kd-overhead 90 "$PY" bench/kd_overhead.py --preset demo --epochs 3 --device cuda
step scale 270 "$PY" bench/scale.py --device cuda --sizes 10000x10000,30000x100000,100000x1000000
