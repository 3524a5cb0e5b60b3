"""Task 2: engineered features + four tuned models, evaluated locally (same as `heartml train`)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the package, without installing it

from heartml.cli import app

if __name__ == "__main__":
    app(["train", *sys.argv[1:]], prog_name="feature_engineering.py")
