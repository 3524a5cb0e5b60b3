"""Task 3: the ONLY command that creates model versions (same as `heartml track`)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the package, without installing it

from heartml.cli import app

if __name__ == "__main__":
    app(["track", *sys.argv[1:]], prog_name="experiment_tracking.py")
