#!/usr/bin/env bash
# The whole workflow on a CUDA machine: the same photos with compare.backend auto (torch on
# the GPU) and numpy must give identical databases. Prints wall times and what the jobs logged.
#   bench/gpu_workflow_check.sh OUT_DIR [REPEAT] [THRESHOLD]
# Needs snakemake, numpy, opencv, pyarrow, jsonschema, pyyaml, scikit-image and torch.
set -euo pipefail
out=${1:?output folder}; repeat=${2:-6}; threshold=${3:-2500}
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
python3 "$repo/bench/make_corpus.py" "$work/corpus" --repeat "$repeat"
for backend in auto numpy; do
  mkdir -p "$work/$backend"
  cat > "$work/$backend/config.yaml" <<CFG
part_a: ["$work/corpus/photos"]
second_loop: {diff_threshold: $threshold}
compare: {backend: $backend}
block_size: 1024
CFG
  start=$(date +%s.%N)
  python3 -m snakemake --snakefile "$repo/workflow/Snakefile" --directory "$work/$backend" \
    --configfile "$work/$backend/config.yaml" --cores "$(nproc)" --quiet all
  end=$(date +%s.%N)
  echo "backend $backend: $(python3 -c "print(round($end - $start, 1))") s wall" | tee -a "$out/report.txt"
  grep -h "kernel\|survive\|matrix products" "$work/$backend"/logs/compare/*.log | sed 's/^[^ ]* [^ ]* //' \
    | sort | uniq -c | sort -rn | head -5 | tee -a "$out/report.txt"
done
python3 - "$work" <<'PY' | tee -a "$out/report.txt"
import sqlite3, sys
work = sys.argv[1]
def rows(b):
    con = sqlite3.connect(f"{work}/{b}/results/fast_diff.db")
    return {t: con.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in ("directory", "dif_table")}
a, n = rows("auto"), rows("numpy")
print(f"files {len(a['directory'])}, stored pairs auto {len(a['dif_table'])} numpy {len(n['dif_table'])}")
print("IDENTICAL databases" if a == n else "DATABASES DIFFER")
PY
