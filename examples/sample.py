"""fast-diff-py 1.0.4's README sample script, with its folder paths, its working files kept out
of the photo folders (db_path, thumb_dir, config_path under results/sample/) and, as its last
comment says, the database kept at the end."""
import sys

from fast_diff_py import FastDifPy, FirstLoopConfig, SecondLoopConfig, Config

# Build the configuration.
flc = FirstLoopConfig(compute_hash=True)
slc = SecondLoopConfig(skip_matching_hash=True, match_aspect_by=0)
a = sys.argv[1] if len(sys.argv) > 2 else "examples/images/holiday/"
b = sys.argv[2] if len(sys.argv) > 2 else "examples/images/phone/"
cfg = Config(part_a=[a], part_b=b, second_loop=slc, first_loop=flc, db_path="results/sample/sample.db",
             thumb_dir="results/sample/work", config_path="results/sample/task.json")

# Run the program
fdo = FastDifPy(config=cfg, purge=True)
fdo.full_index()
fdo.first_loop()
fdo.second_loop()
fdo.commit()

print("="*120)
for c in fdo.get_diff_clusters(matching_hash=True):
    print(c)
print("="*120)
for c in fdo.get_diff_clusters(matching_hash=True, dir_a=False):
    print(c)

# Remove the intermediates but retain the db for later inspection.
fdo.config.delete_db = False
fdo.config.retain_progress = False
fdo.commit()
fdo.cleanup()
print(f"The database is {fdo.config.db_path}")
