"""Run difPy 4.2.1 (build + search) on folders; print build and search seconds as JSON.

Runs in the separate environment of ../shared/reference/ANCHOR-TOOLS.md:
    /tmp/anchor-venv/bin/python bench/run_difpy.py PAIRS_JSON SIMILARITY PROCESSES FOLDER...
Writes the pairs it reports (each group's file with each of its matches) to PAIRS_JSON.
"""

import json
import os
import sys
import time

import difPy

out, similarity, processes, folders = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
start = time.perf_counter()
dif = difPy.build(*folders, show_progress=False, processes=processes)
built = time.perf_counter()
search = difPy.search(dif, similarity=similarity, show_progress=False, processes=processes)
done = time.perf_counter()
pairs = [[os.path.realpath(a), os.path.realpath(b)] for a, ms in search.result.items() for b, _ in ms]
with open(out, "w") as fh:
    json.dump(pairs, fh)
print(json.dumps({"build": built - start, "search": done - built, "groups": len(search.result)}))
