"""Field types shared by the config models: strict YAML scalars, and the marks an error message quotes.

YAML gives ints, floats, strings and booleans; pydantic would coerce "16" to 16 and true to 1, so
every scalar here is strict (a number is never a string or a boolean). Lists stay lax: YAML has no
tuples, and entities hold tuples.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from annotated_types import Ge, Gt, Le
from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, Strict

# Every model: an unknown key is an error (with a did-you-mean), never silently ignored.
MODEL_CONFIG = ConfigDict(extra="forbid")

Integer = Annotated[int, Strict()]
Number = Annotated[float, Strict()]  # an int is a number too
Text = Annotated[str, Strict()]
Flag = Annotated[bool, Strict()]
Fraction = Annotated[Number, Ge(0.0), Le(1.0)]
Seed = Annotated[Integer, Ge(0)]


@dataclass(frozen=True)
class Expect:
    """What an error message says a key expects, where the type alone would say it badly."""

    text: str


class Problem(ValueError):
    """A check's own message, quoted verbatim (cross-key relations, list structure).

    at narrows the key the message names: "[2]" for an item of a list, ".sha256" for a key of the
    section whose check raised it.
    """

    def __init__(self, message: str, at: str = "") -> None:
        super().__init__(message)
        self.at = at


def _not_a_boolean(value: Any) -> Any:
    # A Literal of numbers compares by value, and True == 1: refuse YAML booleans outright.
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    return value


NotBoolean = BeforeValidator(_not_a_boolean)


def _distinct(values: tuple[Any, ...]) -> tuple[Any, ...]:
    if len(set(values)) != len(values):
        raise ValueError("an item is listed twice")
    return values


def distinct(item: Any) -> Any:
    """A list of item whose entries must differ (an export variant or a severity twice is a mistake)."""
    return Annotated[tuple[item, ...], AfterValidator(_distinct), Field(json_schema_extra={"uniqueItems": True})]


def yaml_words(words: dict[bool, str], schema_input: Any) -> BeforeValidator:
    """YAML 1.1 reads bare on/off as booleans: map them back to the words that were meant.

    schema_input is what the JSON Schema accepts (the words, and the booleans that stand for them).
    """
    def read(value: Any) -> Any:
        return words.get(value, value) if isinstance(value, bool) else value

    return BeforeValidator(read, json_schema_input_type=schema_input)


MEGABYTE = 1024 * 1024


def _default_in_megabytes(schema: dict[str, Any]) -> None:
    if "default" in schema:
        schema["default"] = schema["default"] / MEGABYTE


# A size that params.yaml gives in megabytes (the key ends in _mb) and the entity holds in bytes.
Megabytes = Annotated[Number, Gt(0), AfterValidator(lambda megabytes: int(megabytes * MEGABYTE)),
                      Field(json_schema_extra=_default_in_megabytes)]
