"""A deployment package's documents: MANIFEST.json, model_config.yaml, reference_statistics.json
and parity_reference.json (file names in heartml.package.manifest).

pydantic only (no pandas, numpy or mlflow): the prediction service reads these. The readers were
lenient before the documents were typed (a manifest needed only its `files` table, a config only
its model's name and version; the server and batch scorer fall back on the rest), so those are the
only required fields here too: packages built by older heartml versions and by the tests' minimal
builders still load.
"""

from __future__ import annotations

from pydantic import Field

from heartml.documents.base import Document, JsonObject, Part

DEFAULT_THRESHOLD = 0.5  # what a package that records no threshold is scored with


class FileEntry(Part):
    sha256: str
    bytes: int | None = None  # recorded, never checked: the sha256 decides


class ParitySummary(Part):
    """The ONNX graph against the sklearn pipeline when the package was built."""

    # Optional: a package from before the parity reference file must still be read, so that
    # it is refused for what it lacks ("no dataset_spec.yaml ... rebuild it"), not for a field.
    rows: int | None = None
    max_abs_difference: float | None = None
    tolerance: float | None = None
    reference_file: str | None = None


class PackageIdentity(Part):
    """Which registered model a package holds: what `write_manifest` is given."""

    package: str | None = None
    model_name: str | None = None
    algorithm: str | None = None
    version: str | None = None
    run_id: str | None = None
    model_uri: str | None = None
    cv_roc_auc: float | None = None
    data_sha256: str | None = None
    config_hash: str | None = None
    threshold: float | None = None
    parity: ParitySummary | None = None
    serving_file: str | None = None

    def names(self, model_name: str, version: str) -> bool:
        """Whether this is the package of `model_name` version `version`."""
        return (self.model_name, self.version) == (model_name, version)


class Manifest(PackageIdentity, Document):
    """MANIFEST.json: the identity, when it was written and the sha256 of every other file."""

    created_at: str | None = None
    files: dict[str, FileEntry]


class PackagedModel(Part):
    name: str
    algorithm: str | None = None
    version: str  # required, as `name`; declared in the order the file has them
    run_id: str | None = None
    format: str | None = None
    file: str | None = None


class InputCoding(Part):
    """One raw input column, for people reading the config (the rules are in the spec file)."""

    description: str
    kind: str
    codes: dict[int, str] | None = None
    range: list[float] | None = None
    unit: str | None = None
    may_be_missing: bool


class ModelConfig(Document):
    """model_config.yaml: what the model is and how it is used. Written as YAML with
    `to_yaml_data()` (integer code keys stay integers, as yaml.safe_dump writes them)."""

    model: PackagedModel
    threshold: float | None = None
    dataset: str | None = None
    spec_file: str | None = None
    spec_hash: str | None = None
    raw_feature_names: list[str] | None = None
    engineered_feature_names: list[str] | None = None
    one_hot_features: list[str] | None = None
    input_coding: dict[str, InputCoding] | None = None
    metrics: JsonObject = Field(default_factory=dict)  # heartml.documents.ModelSummary's

    def to_yaml_data(self) -> dict[str, object]:
        return self.model_dump(exclude_unset=True)


class CodedReference(Part):
    """A coded feature in the training data: the share of each code."""

    kind: str
    count: int
    missing_fraction: float
    codes: list[int]
    proportions: list[float]


class NumericReference(Part):
    """A numeric feature in the training data: decile bins (for PSI) and 101 quantiles (KS)."""

    kind: str
    count: int
    missing_fraction: float
    mean: float
    std: float
    min: float
    max: float
    bin_edges: list[float]  # interior edges; the bins are open at both ends
    proportions: list[float]
    quantiles: list[float]


class ReferenceStatistics(Document):
    """reference_statistics.json: the baseline for drift monitoring."""

    rows: int
    features: dict[str, CodedReference | NumericReference]


class ParityReference(Document):
    """parity_reference.json: every row with the sklearn pipeline's P(class=1) (heartml.parity)."""

    columns: list[str]
    rows: list[list[float | None]]  # None: a missing value
    expected_probability: list[float]
    expected_from: str
    tolerance: float
