import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def pytest_configure(config):
    config.addinivalue_line("markers", "e2e: runs Snakemake end to end on real media")
    config.addinivalue_line("markers", "slurm: needs a local single-node SLURM")
    config.addinivalue_line("markers", "slow: takes minutes")
