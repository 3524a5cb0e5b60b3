"""What every document shares: strict validation on read, the same JSON bytes on write.

A document is read by the class that writes it. Reading validates every field (strict types:
"0.9" is not a number, 3.0 is not a count) and a failure is one DocumentError naming the file
and the field. Writing goes through the json module with `indent=2`, as the stages always did,
so a file is byte for byte what the untyped code wrote for the same content (pydantic's own
JSON writer would spell 1e-05 as 0.00001 and write non-ASCII unescaped). Keys a document does
not declare are kept as they were read (a newer heartml may have added them), and only the keys
that were read or given are written, so an older file reads and writes back unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, JsonValue, ValidationError

from heartml.errors import DocumentError
from heartml.provenance import write_json

SHOWN_VALUE = 60  # characters of a wrong value quoted in an error message

JsonObject = dict[str, JsonValue]  # free-form JSON, e.g. a logged config or estimator params


class Part(BaseModel):
    """A section of a document: strict, NaN allowed (JSON's NaN as Python writes it)."""

    model_config = ConfigDict(strict=True, extra="allow", ser_json_inf_nan="constants")


class Document(Part):
    """A whole JSON file: `read(path)` and `write(path)`, plus the same from and to plain JSON
    data (an MLflow artifact is JSON data without a local path)."""

    def to_json_dict(self) -> JsonObject:
        """The document as plain JSON data, with exactly the keys it was given or read with."""
        return self.model_dump(mode="json", exclude_unset=True)

    def write(self, path: Path) -> None:
        """Write atomically (a reader never sees half a file)."""
        write_json(path, self.to_json_dict())

    @classmethod
    def from_json_dict(cls, data: object, source: str) -> Self:
        """Validate JSON data; `source` names where it came from in the error message."""
        if not isinstance(data, dict):
            raise DocumentError(f"{source}: expected a JSON object, found {type(data).__name__}")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise DocumentError(f"{source}: {describe(exc)}") from None

    @classmethod
    def read(cls, path: Path) -> Self:
        if not path.is_file():
            raise DocumentError(f"{path} not found")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DocumentError(f"{path}: not valid JSON ({exc})") from None
        return cls.from_json_dict(data, str(path))


def describe(error: ValidationError) -> str:
    """The first problem as `field.path: what is wrong (found value)`, and how many more."""
    problems = error.errors(include_url=False)
    first = problems[0]
    field = ".".join(str(part) for part in first["loc"]) or "(document)"
    message = first["msg"][:1].lower() + first["msg"][1:]
    found = "" if first["type"] == "missing" else f" (found {first['input']!r:.{SHOWN_VALUE}})"
    more = f"; {len(problems) - 1} more problem(s)" if len(problems) > 1 else ""
    return f"{field}: {message}{found}{more}"
