"""Run fast-diff-py 1.0.4, comparing every pair (no hash, no aspect filter).

Runs in the separate environment of ../shared/reference/ANCHOR-TOOLS.md, never in ours:
    /tmp/anchor-venv/bin/python bench/run_fast_diff_py.py WORKDIR THRESHOLD CPUS A [B]
Writes WORKDIR/fast_diff_py.db; prints the seconds of its stages as JSON.
"""

import json
import os
import shutil
import sys
import time

from fast_diff_py import Config, FastDifPy, FirstLoopConfig, SecondLoopConfig

work, threshold, cpus = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
part_a, part_b = sys.argv[4], (sys.argv[5:6] or [None])[0]
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
cfg = Config(
    part_a=[part_a],
    part_b=[part_b] if part_b else [],
    db_path=os.path.join(work, "fast_diff_py.db"),
    thumb_dir=os.path.join(work, "thumbs"),
    config_path=os.path.join(work, "config.json"),
    first_loop=FirstLoopConfig(compute_hash=False, cpu_proc=cpus),
    second_loop=SecondLoopConfig(
        diff_threshold=threshold, cpu_proc=cpus, skip_matching_hash=False, match_aspect_by=None
    ),
    delete_db=False,
    delete_thumb=False,
)
t0 = time.perf_counter()
fdo = FastDifPy(config=cfg, purge=True)
fdo.full_index()
t1 = time.perf_counter()
fdo.first_loop()
t2 = time.perf_counter()
fdo.second_loop()
fdo.commit()
t3 = time.perf_counter()
fdo.config.retain_progress = False
fdo.cleanup()
print(json.dumps({"index": t1 - t0, "first_loop": t2 - t1, "second_loop": t3 - t2}))
