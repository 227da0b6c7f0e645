"""Structured ``llmfn:*`` values (maps such as ``llmfn:gpu`` on AWS or ``llmfn:image``): one validator
whose problems name each bad sub-key as users type it (``llmfn:gpu.acceleratorMemoryGb``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)


def camel(field_name: str) -> str:
    """The camelCase name users type for a snake_case field (``accelerator_memory_gb`` -> ``acceleratorMemoryGb``)."""
    head, *rest = field_name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def parse_submap(model: type[Model], raw: Any, key: str, what: str) -> tuple[Model | None, list[str]]:
    """``raw`` validated as ``model``, or the problems: each names ``key.subKey``, the value and the rule.

    ``what`` describes the expected map for a value that is not one.
    """
    if not isinstance(raw, Mapping):
        return None, [f"{key} = {raw!r}: must be a map: {what}"]
    try:
        return model.model_validate(dict(raw)), []
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            sub = f"{key}.{err['loc'][0]}" if err["loc"] else key
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "missing":
                problems.append(f"{sub} is required ({what})")
            elif err["type"] == "extra_forbidden":
                known = ", ".join(camel(name) for name in model.model_fields)
                problems.append(f"{sub} is not a known key; known: {known}")
            else:
                problems.append(f"{sub} = {err.get('input')!r}: {message}")
        return None, problems
