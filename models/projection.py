"""The projection layers of a PyLate checkpoint (``k_Dense`` folders), without PyLate.

One :class:`DenseLayer` reproduces ``pylate.models.Dense``: ``activation(linear(x))``
plus an optional residual (identity when the shapes match, else a bias-free linear).
Its state-dict keys (``linear.weight``, ``linear.bias``, ``residual.weight``) are the
ones PyLate saves, so checkpoints load with a strict ``load_state_dict``.
"""
from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from safetensors.torch import load_file
from torch import nn

IDENTITY = "torch.nn.modules.linear.Identity"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


@dataclass(frozen=True)
class DenseConfig:
    """The contents of a ``k_Dense/config.json``."""

    in_features: int
    out_features: int
    bias: bool = True  # sentence-transformers' default when the key is missing
    activation_function: str = IDENTITY
    use_residual: bool = False

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], where: str = "Dense config") -> "DenseConfig":
        missing = [key for key in ("in_features", "out_features") if key not in raw]
        if missing:
            raise ValueError(f"{where}: missing {missing}; found keys {sorted(raw)}")
        return cls(
            in_features=int(raw["in_features"]),
            out_features=int(raw["out_features"]),
            bias=bool(raw.get("bias", True)),
            activation_function=str(raw.get("activation_function") or IDENTITY),
            use_residual=bool(raw.get("use_residual", False)),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "in_features": self.in_features,
            "out_features": self.out_features,
            "bias": self.bias,
            "activation_function": self.activation_function,
            "use_residual": self.use_residual,
        }


def activation_from_name(name: str) -> nn.Module:
    """Instantiate an activation saved by its import path (``torch.nn.modules.activation.Tanh``).

    Only argument-free ``torch.nn`` modules are accepted: a checkpoint must not make us
    import arbitrary code.
    """
    module_name, _, class_name = name.rpartition(".")
    if not module_name.startswith("torch.nn") or not class_name:
        raise ValueError(f"unsupported Dense activation_function {name!r}: only torch.nn modules are allowed (e.g. {IDENTITY!r})")
    cls = getattr(importlib.import_module(module_name), class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ValueError(f"Dense activation_function {name!r} is not a torch.nn.Module class")
    return cls()


class DenseLayer(nn.Module):
    """``y = activation(x W^T + b)`` (+ ``x`` or ``x R^T`` when ``use_residual``)."""

    def __init__(self, config: DenseConfig) -> None:
        super().__init__()
        self.config = config
        self.linear = nn.Linear(config.in_features, config.out_features, bias=config.bias)
        self.activation = activation_from_name(config.activation_function)
        self.residual = (
            nn.Linear(config.in_features, config.out_features, bias=False)
            if config.use_residual and config.in_features != config.out_features
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.activation(self.linear(x))
        if self.config.use_residual:
            y = y + (x if self.residual is None else self.residual(x))
        return y


class DenseStack(nn.Sequential):
    """The Dense layers of a checkpoint, applied in ``modules.json`` order."""

    @property
    def configs(self) -> tuple[DenseConfig, ...]:
        return tuple(layer.config for layer in self)

    @property
    def out_features(self) -> int:
        return self[-1].config.out_features

    def __init__(self, *layers: DenseLayer) -> None:
        if not layers:
            raise ValueError("a ColBERT checkpoint needs at least one Dense layer")
        for previous, current in zip(layers, layers[1:]):
            if previous.config.out_features != current.config.in_features:
                raise ValueError(
                    f"Dense layers do not chain: out_features {previous.config.out_features} feeds in_features {current.config.in_features}"
                )
        super().__init__(*layers)

    @classmethod
    def from_configs(cls, configs: Sequence[DenseConfig]) -> "DenseStack":
        """Freshly initialised layers (torch's default init, from the global RNG)."""
        return cls(*(DenseLayer(config) for config in configs))


def dense_weight_file(folder: Path) -> Path:
    for name in WEIGHT_FILES:
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"no Dense weights in {folder}: expected one of {list(WEIGHT_FILES)}")


def read_dense_config(folder: Path) -> DenseConfig:
    path = folder / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"missing Dense config {path}")
    return DenseConfig.from_dict(json.loads(path.read_text(encoding="utf-8")), where=str(path))


def load_dense_layer(folder: Path) -> DenseLayer:
    """Read one ``k_Dense`` folder (config + safetensors, else a weights-only torch pickle)."""
    layer = DenseLayer(read_dense_config(folder))
    weights = dense_weight_file(folder)
    if weights.suffix == ".safetensors":
        state = load_file(str(weights))
    else:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    missing, unexpected = layer.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{weights}: weights do not match {layer.config}: missing {missing}, unexpected {unexpected}")
    return layer


def load_dense_stack(folders: Sequence[Path]) -> DenseStack:
    return DenseStack(*(load_dense_layer(folder) for folder in folders))
