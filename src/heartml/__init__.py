"""heartml: an MLOps pipeline for tabular clinical risk models (UCI heart disease as reference)."""

__version__ = "0.1.0"
