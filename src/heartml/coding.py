"""The UCI Cleveland coding: one description of every input column, used by the data schema,
the feature pipeline, the API's request model, the web form and the packaged model config.

Kept free of heavy imports so that the serving path can use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Column:
    name: str
    label: str  # plain words, for people (web form, reports)
    description: str  # UCI meaning and unit
    kind: str  # "numeric" | "binary" | "categorical" | "ordinal"
    minimum: float | None = None
    maximum: float | None = None
    codes: dict[int, str] = field(default_factory=dict)  # allowed code -> meaning
    unit: str = ""
    missing_zero: bool = False  # UCI files write 0 where the measurement is missing
    example: float = 0.0

    @property
    def allowed(self) -> str:
        if self.codes:
            return "one of " + ", ".join(
                f"{code} ({meaning})" for code, meaning in self.codes.items()
            )
        return f"a number from {self.minimum:g} to {self.maximum:g}" + (
            f" {self.unit}" if self.unit else ""
        )

    def is_allowed(self, value: float) -> bool:
        if self.codes:
            return value in self.codes
        assert self.minimum is not None and self.maximum is not None
        return self.minimum <= value <= self.maximum


RAW_COLUMNS: tuple[Column, ...] = (
    Column("age", "Age", "Age in years", "numeric", 18, 100, unit="years", example=63),
    Column(
        "sex",
        "Sex",
        "Sex (1 = male, 0 = female)",
        "binary",
        codes={0: "female", 1: "male"},
        example=1,
    ),
    Column(
        "cp",
        "Chest pain type",
        "Chest pain type (UCI coding 1-4)",
        "categorical",
        codes={1: "typical angina", 2: "atypical angina", 3: "non-anginal pain", 4: "asymptomatic"},
        example=1,
    ),
    Column(
        "trestbps",
        "Resting blood pressure",
        "Resting blood pressure on admission",
        "numeric",
        70,
        250,
        unit="mm Hg",
        missing_zero=True,
        example=145,
    ),
    Column(
        "chol",
        "Serum cholesterol",
        "Serum cholesterol",
        "numeric",
        80,
        700,
        unit="mg/dl",
        missing_zero=True,
        example=233,
    ),
    Column(
        "fbs",
        "Fasting blood sugar > 120 mg/dl",
        "Fasting blood sugar > 120 mg/dl (1 = true)",
        "binary",
        codes={0: "false", 1: "true"},
        example=1,
    ),
    Column(
        "restecg",
        "Resting ECG",
        "Resting electrocardiographic result (UCI coding 0-2)",
        "categorical",
        codes={0: "normal", 1: "ST-T wave abnormality", 2: "left ventricular hypertrophy"},
        example=2,
    ),
    Column(
        "thalach",
        "Maximum heart rate",
        "Maximum heart rate achieved in the exercise test",
        "numeric",
        50,
        230,
        unit="beats/min",
        example=150,
    ),
    Column(
        "exang",
        "Exercise-induced angina",
        "Exercise-induced angina (1 = yes, 0 = no)",
        "binary",
        codes={0: "no", 1: "yes"},
        example=0,
    ),
    Column(
        "oldpeak",
        "ST depression",
        "ST depression induced by exercise relative to rest",
        "numeric",
        -3,
        10,
        unit="mm",
        example=2.3,
    ),
    Column(
        "slope",
        "Slope of peak exercise ST",
        "Slope of the peak exercise ST segment (1-3)",
        "categorical",
        codes={1: "upsloping", 2: "flat", 3: "downsloping"},
        example=3,
    ),
    Column(
        "ca",
        "Major vessels coloured",
        "Number of major vessels (0-3) coloured by fluoroscopy",
        "ordinal",
        codes={0: "none", 1: "one", 2: "two", 3: "three"},
        example=0,
    ),
    Column(
        "thal",
        "Thallium stress test",
        "Thallium stress test result (UCI coding 3/6/7)",
        "categorical",
        codes={3: "normal", 6: "fixed defect", 7: "reversible defect"},
        example=6,
    ),
)

COLUMNS_BY_NAME: dict[str, Column] = {column.name: column for column in RAW_COLUMNS}
RAW_FEATURES: tuple[str, ...] = tuple(column.name for column in RAW_COLUMNS)
ONE_HOT_FEATURES: tuple[str, ...] = ("cp", "restecg", "slope", "thal")
SOURCE_COLUMN = "num"  # UCI diagnosis 0-4
TARGET = "target"  # 1 when num > 0
FILE_COLUMNS: tuple[str, ...] = (*RAW_FEATURES, SOURCE_COLUMN)

ENGINEERED_FEATURES: tuple[str, ...] = (
    "age_group",
    "chol_age_ratio",
    "heart_rate_reserve",
    "risk_score",
    "age_sex_interaction",
    "cp_exang_interaction",
)
AGE_GROUP_LABELS: tuple[str, ...] = ("young", "middle_aged", "senior", "elderly")
AGE_GROUP_EDGES: tuple[float, ...] = (40.0, 50.0, 60.0)  # right-closed: 40 is young, 41 middle_aged


def example_record() -> dict[str, float]:
    """The seed's example patient (first row of the Cleveland file)."""
    return {column.name: column.example for column in RAW_COLUMNS}
