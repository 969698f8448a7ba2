"""What an imported Hugging Face checkpoint is checked for before any weight is copied
(interop): the configuration's values against what the tinylm model can compute, and the
tensors' names and shapes against what the model expects. Each check collects every
problem and raises once, naming all of them, so a user fixes the file in one go.

    value = config_value(config, "layer_norm_epsilon", 1e-5)      # HF's default if absent
    refuse_unsupported(where, [("activation_function", "relu", "gelu_new")])
    check_tensor_set(where, found={name: array}, expected={name: shape})
"""

from __future__ import annotations

import math

from tinylm.interop.hf_format import HFFormatError


class UnsupportedConfigError(HFFormatError):
    """config.json asks for an architecture or a value the tinylm model does not have."""


class TensorMismatchError(HFFormatError):
    """The safetensors tensors are not the ones the configuration implies."""


def config_value(config: dict, field: str, default):
    """config[field], or Hugging Face's default for it when the field is absent (or null,
    for the fields whose null means the default)."""
    value = config.get(field, default)
    return default if value is None else value


def same_value(value, supported) -> bool:
    """Equal, with floats compared to a relative 1e-9 (JSON rounds them)."""
    if isinstance(value, bool) or isinstance(supported, bool):
        return value is supported
    if isinstance(value, (int, float)) and isinstance(supported, (int, float)):
        return math.isclose(value, supported, rel_tol=1e-9)
    return value == supported


def refuse_unsupported(where: str, problems: list, fix: str = "") -> None:
    """problems [(field, value found, what tinylm supports)] -> one error naming them all."""
    if not problems:
        return
    lines = "; ".join(f"{field}={value!r} (tinylm supports {supported})"
                      for field, value, supported in problems)
    raise UnsupportedConfigError(f"{where}: the configuration asks for what tinylm's model "
                                 f"does not compute: {lines}.{' ' + fix if fix else ''}")


def architecture_problems(config: dict, model_type: str, readable: tuple,
                          need: str = "") -> list:
    """[(field, value, supported)] for a config whose model_type is not ``model_type`` or
    whose architectures (if named) are not all in ``readable``; ``need`` says why."""
    problems = []
    if config.get("model_type") != model_type:
        problems.append(("model_type", config.get("model_type"), f"'{model_type}' here"))
    if any(a not in readable for a in config.get("architectures") or []):
        problems.append(("architectures", config["architectures"],
                         f"{list(readable)}{': ' + need if need else ''}"))
    return problems


def check_tensor_set(where: str, found: dict, expected: dict) -> None:
    """found {name: array}, expected {name: shape}: every expected tensor present with its
    shape and nothing else; one error listing the missing, the unexpected and the
    misshapen tensors (each with its shape and the expected one)."""
    missing = [name for name in expected if name not in found]
    unexpected = [name for name in found if name not in expected]
    misshapen = [f"{name} has shape {tuple(found[name].shape)}, expected "
                 f"{tuple(expected[name])}" for name in expected
                 if name in found and tuple(found[name].shape) != tuple(expected[name])]
    problems = []
    if missing:
        problems.append(f"missing tensors {_listed(missing)}")
    if unexpected:
        problems.append(f"unexpected tensors {_listed(unexpected)}")
    if misshapen:
        problems.append("; ".join(misshapen))
    if problems:
        raise TensorMismatchError(f"{where}: the tensors do not match config.json: "
                                  f"{'; '.join(problems)}. Is config.json the one saved with "
                                  "these weights?")


def check_floating(where: str, found: dict) -> None:
    """Every tensor holds floating-point numbers (an int tensor is not a set of weights)."""
    bad = [f"{name} ({value.dtype})" for name, value in found.items() if value.dtype.kind != "f"]
    if bad:
        raise TensorMismatchError(f"{where}: tensors {_listed(bad)} are not floating-point; "
                                  "they are not model weights.")


def _listed(names: list, limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return f"[{shown}{f', ... ({len(names)} in all)' if len(names) > limit else ''}]"
