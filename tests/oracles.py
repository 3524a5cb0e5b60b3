"""Facts the tests check the code against, written down from sources outside the code."""

from pathlib import Path

# The Cleveland file's sha256 as data/raw/README.md records it.
CLEVELAND_SHA256 = "a74b7efa387bc9d108d7d0115d831fe9b414b29ae7124f331b622b4efa0427c8"

REPO_ROOT = Path(__file__).resolve().parents[1]
HEART_SPEC_FILE = REPO_ROOT / "configs" / "datasets" / "uci_heart.yaml"
