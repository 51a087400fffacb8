"""Run difPy 4.2.1 (build + search, 'similar') on one folder; print the wall seconds.

Runs in the separate environment of ../shared/reference/ANCHOR-TOOLS.md:
    /tmp/anchor-venv/bin/python bench/run_difpy.py FOLDER [SIMILARITY]
"""

import sys
import time

import difPy

folder = sys.argv[1]
similarity = sys.argv[2] if len(sys.argv) > 2 else "similar"
start = time.perf_counter()
dif = difPy.build(folder, show_progress=False)
search = difPy.search(dif, similarity=similarity, show_progress=False)
elapsed = time.perf_counter() - start
print(f"{elapsed:.3f} {len(search.result)}")
