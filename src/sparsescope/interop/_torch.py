"""Read a torch model into a flowgraph: ``from_torch(module)``; weights from safe files only.

``from_torch`` walks an ``nn.Sequential`` (nested ones are flattened) of
``Linear``, ``ReLU``, ``Flatten``, ``Identity`` and ``Dropout`` (eval mode)
modules and lowers each onto the same :class:`Chain` the ONNX reader uses.
Pruned models are read as they compute:

* ``torch.nn.utils.prune`` keeps ``weight_orig`` and ``weight_mask``; the
  weight used in the forward pass is ``weight_orig * weight_mask``;
* ``torch.nn.utils.parametrize`` computes ``module.weight`` from its
  parametrizations on every access; that value is read.

The model is only read, never changed.  :func:`load_state_dict` reads
weights from safetensors, or from ``.pt``/``.pth`` with
``torch.load(weights_only=True)`` -- nothing is ever unpickled.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .._errors import GraphError
from ..graph import Flowgraph
from ._chain import Chain, left_data_edges

SUPPORTED = "Linear, ReLU, Flatten, Identity, Dropout"


def from_torch(
    model: Any,
    input_shape: Sequence[int] | None = None,
    *,
    state_dict: Mapping[str, Any] | str | os.PathLike | None = None,
    input_labels: Sequence[str] | None = None,
    output_labels: Sequence[str] | None = None,
    meta: dict[str, Any] | None = None,
) -> Flowgraph:
    """The flowgraph of ``model`` (an ``nn.Sequential``) on one sample of shape ``input_shape``.

    ``input_shape`` excludes the batch axis (``(28, 28)``, ``(784,)``); it
    defaults to ``(in_features,)`` of a first ``Linear``.  ``state_dict`` (a
    mapping or a file for :func:`load_state_dict`) is loaded into a copy of
    the model first.  Unsupported modules raise :class:`GraphError` naming them.
    """
    import torch

    if state_dict is not None:
        model = with_state_dict(model, state_dict)
    modules = list(_walk(model, ""))
    if input_shape is None:
        first = next((m for _, m in modules if isinstance(m, torch.nn.Linear)), None)
        if first is None or not isinstance(modules[0][1], (torch.nn.Linear, torch.nn.Identity)):
            raise GraphError("give input_shape: the model does not start with a Linear layer")
        input_shape = (first.in_features,)
    chain = Chain(tuple(input_shape), origin="input", strip=False)
    with torch.no_grad():
        for name, m in modules:
            _lower(chain, name, m)
    return chain.finish(input_labels=input_labels, output_labels=output_labels, meta=meta, origins=False)


def _walk(model: Any, prefix: str):
    import torch.nn as nn

    if isinstance(model, nn.Sequential):
        for name, child in model.named_children():
            yield from _walk(child, f"{prefix}.{name}" if prefix else name)
    elif isinstance(model, nn.Module):
        own = [n for n, _ in model.named_children() if n != "parametrizations"]
        if own and not isinstance(model, (nn.Linear, nn.Conv2d)):
            raise GraphError(f"module {prefix or 'model'} ({type(model).__name__}) has its own forward; from_torch "
                             "reads nn.Sequential models: export it with torch.onnx.export and use from_onnx")
        yield prefix or type(model).__name__, model
    else:
        raise GraphError(f"from_torch needs a torch nn.Module, got {type(model).__name__}")


def effective(module: Any, name: str) -> Any:
    """The tensor ``module`` computes with for parameter ``name``, as a float64 numpy array or ``None``.

    ``prune``: ``<name>_orig * <name>_mask`` (what the forward pre-hook sets);
    ``parametrize`` and plain parameters: ``getattr(module, name)``.
    """
    orig = getattr(module, name + "_orig", None)
    mask = dict(module.named_buffers(recurse=False)).get(name + "_mask")
    t = orig * mask if (orig is not None and mask is not None) else getattr(module, name, None)
    if t is None:
        return None
    return t.detach().cpu().double().numpy().copy()


def _lower(chain: Chain, name: str, m: Any) -> None:
    import torch.nn as nn

    where = f"{name} ({type(m).__name__})"
    if isinstance(m, nn.Linear):
        w, b = effective(m, "weight"), effective(m, "bias")
        k = chain.shape[-1]
        if w.shape[1] != k:
            raise GraphError(f"{where}: takes {w.shape[1]} features but the tensor before it has shape {chain.shape}")
        rows = chain.size // k
        out = chain.shape[:-1] + (w.shape[0],)
        if rows == 1:
            chain.dense(w, b, out, origin=name)
        else:  # a Linear on each row of a (rows, k) tensor
            dst, src, wt = left_data_edges(rows, k, w.T, lambda r, kk: r * k + kk)
            chain.edges(dst, src, wt, None if b is None else np.tile(b, rows), out, kind="dense", origin=name)
    elif isinstance(m, nn.ReLU):
        chain.relu(origin=name)
    elif isinstance(m, nn.Flatten):
        s = chain.shape
        start, end = m.start_dim, m.end_dim
        if start == 0:
            raise GraphError(f"{where}: start_dim=0 would merge the batch axis")
        start = start - 1 if start > 0 else start + len(s) + 1 - 1
        end = end - 1 if end > 0 else end + len(s)
        if not 0 <= start <= end < len(s):
            raise GraphError(f"{where}: dims {m.start_dim}..{m.end_dim} do not fit a tensor of shape {s}")
        chain.reshape(s[:start] + (int(np.prod(s[start:end + 1])),) + s[end + 1:], origin=name)
    elif isinstance(m, nn.Identity):
        pass
    elif isinstance(m, nn.Dropout):
        if m.training and m.p > 0:
            raise GraphError(f"{where}: the model is in training mode (random dropout); call model.eval() first")
    else:
        raise GraphError(f"{where} is not supported: from_torch reads {SUPPORTED} modules")


# -- weights from files ---------------------------------------------------------
def load_state_dict(path: str | os.PathLike) -> dict[str, Any]:
    """A state dict (name -> tensor) from ``.safetensors``, or ``.pt``/``.pth``/``.bin`` via
    ``torch.load(weights_only=True)``: no pickled code is ever run."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise GraphError(f"no weights file {path}")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            sd = load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            raise GraphError(f"{path.name} is not a readable safetensors file: {_short(exc)}") from None
    elif suffix in (".pt", ".pth", ".bin"):
        import pickle

        try:
            sd = torch.load(str(path), map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            raise GraphError(f"{path.name} holds more than tensors (refusing to unpickle it): {_short(exc)}") from None
        except (RuntimeError, EOFError, ValueError, OSError) as exc:
            raise GraphError(f"{path.name} is not a readable torch weights file: {_short(exc)}") from None
        if isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
            sd = sd["state_dict"]
    else:
        raise GraphError(f"{path.name}: weights must be .safetensors, .pt or .pth")
    if not isinstance(sd, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in sd.items()):
        raise GraphError(f"{path.name} does not hold a state dict (names -> tensors)")
    return sd


def with_state_dict(model: Any, state: Mapping[str, Any] | str | os.PathLike) -> Any:
    """A copy of ``model`` with ``state`` loaded (strictly: every name must match).

    A state dict saved from a model pruned with ``torch.nn.utils.prune``
    (``x.weight_orig`` and ``x.weight_mask``) loads into an unpruned model as
    ``x.weight = weight_orig * weight_mask``.
    """
    import torch

    sd = dict(load_state_dict(state) if isinstance(state, (str, os.PathLike)) else state)
    target = copy.deepcopy(model)
    own = set(target.state_dict())
    for key in [k for k in sd if k.endswith("_orig")]:
        base = key[: -len("_orig")]
        if base + "_mask" in sd and base not in own and key not in own:
            sd[base] = sd.pop(key) * sd.pop(base + "_mask")
    for key, value in sd.items():
        if not torch.is_floating_point(value) and not key.endswith("_mask"):
            raise GraphError(f"state dict entry {key!r} is not a float tensor")
        if torch.is_floating_point(value) and not bool(torch.isfinite(value).all()):
            raise GraphError(f"state dict entry {key!r} has NaN or infinite values")
    try:
        target.load_state_dict(sd, strict=True)
    except RuntimeError as exc:
        raise GraphError(f"the weights do not fit the model: {_short(exc)}") from None
    return target


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:240] + ("..." if len(text) > 240 else "")
