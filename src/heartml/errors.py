"""One family for the failures a user can act on.

Library code raises a subclass of HeartmlError with a one-line message that states the fact
(which file, which field, which value, what is allowed). What to do about it ("run `heartml
package`") is a *hint*: a separate, optional attribute that only the CLI prints, so that the
API and library callers never receive command-line advice in their messages.

Standard library only at run time: the serving package imports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

if TYPE_CHECKING:  # an annotation only (never evaluated): no pydantic import at run time
    from pydantic import JsonValue


class FieldProblem(TypedDict):
    """One refused value in an error body's list (the API's 422 `detail` items, documented as
    heartml.serving.schemas.ErrorItem; `heartml feedback` prints the same)."""

    field: str  # where: `cp`, `records[3].cp`, `[2].outcome`
    value: JsonValue  # the value received, as JSON can carry it (null when missing)
    message: str  # what is wrong and what is allowed
    type: str  # the problem's kind (pydantic's error type, or the rule's)


class HeartmlError(Exception):
    """Base of every heartml error a user can act on; `hint` is advice for the CLI to print."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class ConfigError(HeartmlError, ValueError):
    """A configuration (or dataset spec) problem, phrased as one line for the user."""


class DataError(HeartmlError, ValueError):
    """The data (a file, not one row of it) cannot be used; the message names the problem."""


class ArtifactError(HeartmlError, RuntimeError):
    """A local artifact is missing or does not match its recorded checksum."""


class PackagingError(HeartmlError, RuntimeError):
    """Packaging or verification failed; the message says which file and why."""


class TrackingError(HeartmlError, RuntimeError):
    """The tracking server or registry failed; the message is one line for the user."""


class ReportError(HeartmlError, ValueError):
    """A report cannot be made from its input document; the message says what is missing."""


class DocumentError(HeartmlError, ValueError):
    """A JSON document between stages cannot be read: the message names the file and the field."""
