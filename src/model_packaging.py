"""Task 4: package the champion (same as `heartml package`).

Also importable, as in the seed:
    from src.model_packaging import ModelPackager
    info = ModelPackager().get_champion_model_info()   # model_name, version, roc_auc, ...
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the package, without installing it

from heartml.settings import Settings


class ModelPackager:
    """The seed's packaging facade over heartml.package and the MLflow registry."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()

    def get_champion_model_info(self) -> dict[str, Any]:
        """The champion's identity and metrics; raises TrackingError if there is none."""
        from heartml.tracking.registry import Registry

        return Registry.connect(self.settings).require_champion().as_dict()

    def package(self) -> Path:
        """Build and verify the champion's package; return its folder."""
        from heartml.stages import run_package

        built, _verification = run_package(self.settings)
        return Path(built.directory)


if __name__ == "__main__":
    from heartml.cli import app

    app(["package", *sys.argv[1:]], prog_name="model_packaging.py")
