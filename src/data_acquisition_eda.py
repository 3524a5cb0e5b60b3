"""Task 1: acquire, validate, split and describe the data (same as `heartml data`)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the package, without installing it

from heartml.cli import app

if __name__ == "__main__":
    app(["data", *sys.argv[1:]], prog_name="data_acquisition_eda.py")
