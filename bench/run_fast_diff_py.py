"""Run fast-diff-py 1.0.4 on one folder, comparing every pair (no hash, no aspect filter).

Runs in the separate environment of ../shared/reference/ANCHOR-TOOLS.md, never in ours:
    /tmp/anchor-venv/bin/python bench/run_fast_diff_py.py FOLDER WORKDIR THRESHOLD [CPUS]
Writes WORKDIR/fast_diff_py.db and prints the wall seconds.
"""

import os
import shutil
import sys
import time

from fast_diff_py import Config, FastDifPy, FirstLoopConfig, SecondLoopConfig

folder, work, threshold = sys.argv[1], sys.argv[2], float(sys.argv[3])
cpus = int(sys.argv[4]) if len(sys.argv) > 4 else os.cpu_count()
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
cfg = Config(
    part_a=[folder],
    db_path=os.path.join(work, "fast_diff_py.db"),
    thumb_dir=os.path.join(work, "thumbs"),
    config_path=os.path.join(work, "config.json"),
    first_loop=FirstLoopConfig(compute_hash=False, cpu_proc=cpus),
    second_loop=SecondLoopConfig(diff_threshold=threshold, cpu_proc=cpus, skip_matching_hash=False,
                                 match_aspect_by=None),
    delete_db=False,
    delete_thumb=False,
)
start = time.perf_counter()
fdo = FastDifPy(config=cfg, purge=True)
fdo.full_index()
fdo.first_loop()
fdo.second_loop()
fdo.commit()
elapsed = time.perf_counter() - start
fdo.config.retain_progress = False
fdo.cleanup()
print(f"{elapsed:.3f}")
