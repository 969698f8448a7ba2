"""Configuration dataclasses built from untrusted plain data (a checkpoint's JSON, a preset,
``--model key=value`` flags), with every value checked against the field's annotation.

    config = config_from_dict(GPTConfig, {"n_head": 4, "dropout": 0.1}, owner="GPT")

A value of the wrong type is an error that names the field, the expected type and the value
found (``GPT: n_head must be an int, got '4' (str)``), never a crash deep inside the model.
The annotations understood are the ones tinylm's configurations use: ``int``, ``float`` (an
int is accepted and converted), ``bool``, ``str``, ``tuple`` (of numbers) and ``X | None``.
Only types are checked here; ranges are each configuration's own business.
"""

from __future__ import annotations

import dataclasses
import math

_NAMES = {"int": int, "float": float, "bool": bool, "str": str, "tuple": tuple}


def _allowed(annotation) -> tuple[set, bool]:
    """'int | None' (or the type itself) -> ({int}, True): the base types and whether None
    is allowed."""
    text = annotation.__name__ if isinstance(annotation, type) else str(annotation)
    parts = [p.strip() for p in text.replace("NoneType", "None").split("|")]
    optional = "None" in parts
    return {_NAMES[p] for p in parts if p in _NAMES}, optional


def _type_text(types: set, optional: bool) -> str:
    names = sorted(t.__name__ for t in types) + (["None"] if optional else [])
    return " or ".join(names)


def checked_value(owner: str, name: str, annotation: str, value):
    """``value`` converted to the annotation's type, or a ValueError naming the field."""
    types, optional = _allowed(annotation)
    if value is None and optional:
        return None
    is_bool = isinstance(value, bool)
    if bool in types and is_bool:
        return value
    if int in types and isinstance(value, int) and not is_bool:
        return value
    if float in types and isinstance(value, (int, float)) and not is_bool:
        if not math.isfinite(value):
            raise ValueError(f"{owner}: {name} must be a finite number, got {value!r}.")
        return float(value)
    if str in types and isinstance(value, str):
        return value
    if tuple in types and isinstance(value, (list, tuple)) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return tuple(value)
    if not types:                               # an annotation this module does not know
        return value
    raise ValueError(f"{owner}: {name} must be {_type_text(types, optional)}, got {value!r} "
                     f"({type(value).__name__}).")


def config_from_dict(cls, values: dict, owner: str | None = None):
    """Build dataclass ``cls`` from ``values``: unknown keys and wrongly typed values raise
    ValueError naming them; missing keys take the field's default."""
    owner = owner or cls.__name__
    if not isinstance(values, dict):
        raise ValueError(f"{owner}: the configuration must be a JSON object (a dict), got "
                         f"{type(values).__name__}.")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(f"{owner}: unknown configuration keys {unknown}; valid keys are "
                         f"{sorted(fields)}.")
    checked = {k: checked_value(owner, k, fields[k].type, v) for k, v in values.items()}
    missing = sorted(k for k, f in fields.items() if k not in checked
                     and f.default is dataclasses.MISSING
                     and f.default_factory is dataclasses.MISSING)
    if missing:
        raise ValueError(f"{owner}: the configuration lacks the required keys {missing}.")
    return cls(**checked)
