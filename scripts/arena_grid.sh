#!/bin/bash
# The arena's λ grid (README, "The arena"): every method at its authors' λ (the preset) and at
# that λ × 0.01, × 0.0001 and × 0.000001, seed 0, two fits at a time with one thread each; then the table.
#   bash scripts/arena_grid.sh [OUT]      (OUT: folder for the run directories, default runs/arena-grid)
set -euo pipefail
out=${1:-runs/arena-grid}
mkdir -p "$out"
export OMP_NUM_THREADS=1
declare -A AUTHORS=([kd]=1 [rcekd]=5 [rrd]=1e-4 [dcd]=0.01 [cd]=0.5 [unkd]=0.5 [hetcomp]=0.005 [de]=0.05)
rcekd train-teacher --preset arena --run-dir "$out/teacher"
# authors' λ: scratch and the eight KD methods, in two processes
rcekd distill --preset arena --methods scratch,kd,rcekd,rrd,unkd --run-dir "$out/x1-a" > "$out/x1-a.log" 2>&1 &
rcekd distill --preset arena --methods dcd,cd,hetcomp,de --run-dir "$out/x1-b" > "$out/x1-b.log" 2>&1 &
wait
# the smaller λ: one run per method and λ, two at a time
for mult in 0.01 0.0001 0.000001; do
  for m in dcd hetcomp unkd de rrd cd rcekd kd; do
    echo "$m $mult $(python -c "print(f'{${AUTHORS[$m]} * $mult:g}')")"
  done
done | xargs -P 2 -L 1 sh -c 'rcekd distill --preset arena --methods "$0" --set "$0.lam=$2" \
  --run-dir "'"$out"'/$0-x$1" > "'"$out"'/$0-x$1.log" 2>&1'
python scripts/grid_table.py "$out"/x1-a "$out"/x1-b "$out"/*-x0.01 "$out"/*-x0.0001 "$out"/*-x0.000001
