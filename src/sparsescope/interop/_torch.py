"""Read a torch model into a flowgraph: ``from_torch(module)``; weights from safe files only.

``from_torch`` walks an ``nn.Sequential`` (nested ones are flattened) of
``Linear``, ``Conv2d``, ``AvgPool2d``, ``ReLU``, ``Flatten``, ``Identity`` and
``Dropout`` (eval mode) modules and lowers each onto the same :class:`Chain` the ONNX reader uses.
Pruned models are read as they compute:

* ``torch.nn.utils.prune`` keeps ``weight_orig`` and ``weight_mask``; the
  weight used in the forward pass is ``weight_orig * weight_mask``;
* ``torch.nn.utils.parametrize`` computes ``module.weight`` from its
  parametrizations on every access; that value is read.

The model is only read, never changed.  :func:`load_state_dict` reads
weights from safetensors, or from ``.pt``/``.pth`` with
``torch.load(weights_only=True)`` -- nothing is ever unpickled -- and ``from_torch(model,
state_dict=...)`` reads them for the model's architecture without loading them into it.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .._errors import GraphError
from ..graph import Flowgraph
from ._chain import Chain, left_data_edges

SUPPORTED = "Linear, Conv2d, AvgPool2d, ReLU, Flatten, Identity, Dropout"


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
    mapping or a file for :func:`load_state_dict`) supplies the weights
    instead of the model's own; every entry must be used and fit (a pruned
    model's ``weight_orig``/``weight_mask`` fit a plain model's ``weight``).  Unsupported modules raise :class:`GraphError` naming them.
    """
    import torch

    state = None
    if state_dict is not None:
        state = dict(load_state_dict(state_dict) if isinstance(state_dict, (str, os.PathLike)) else state_dict)
        _check_state(state)
    modules = list(_walk(model, ""))
    if input_shape is None:
        nn = torch.nn
        k = next((i for i, (_, m) in enumerate(modules) if isinstance(m, nn.Linear)), None)
        if k is None or not all(isinstance(m, (nn.ReLU, nn.Identity, nn.Dropout)) for _, m in modules[:k]):
            raise GraphError("give input_shape: it is known only for a model that starts with a Linear layer")
        input_shape = (modules[k][1].in_features,)
    chain = Chain(tuple(input_shape), origin="input", strip=False)
    used: set[str] = set()
    with torch.no_grad():
        for name, m in modules:
            _lower(chain, name, m, state, used)
    if state is not None and set(state) - used:
        raise GraphError(f"the weights do not fit the model: unused entries {sorted(set(state) - used)[:4]}")
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
        yield prefix, model
    else:
        raise GraphError(f"from_torch needs a torch nn.Module, got {type(model).__name__}")


def effective(module: Any, name: str, prefix: str = "", state: Mapping[str, Any] | None = None,
              used: set[str] | None = None) -> np.ndarray | None:
    """The tensor ``module`` computes with for parameter ``name``, as a float64 numpy array or ``None``.

    ``prune``: ``<name>_orig * <name>_mask`` (what the forward pre-hook sets);
    ``parametrize`` and plain parameters: ``getattr(module, name)``.  With a
    ``state`` dict (keys under ``prefix``) the values come from it instead:
    ``<name>``, ``<name>_orig * <name>_mask``, or the module's own
    parametrization applied to ``parametrizations.<name>.original``.
    """
    if state is None:
        orig = getattr(module, name + "_orig", None)
        mask = dict(module.named_buffers(recurse=False)).get(name + "_mask")
        t = orig * mask if (orig is not None and mask is not None) else getattr(module, name, None)
    else:
        t = _from_state(module, name, prefix, state, used if used is not None else set())
    if t is None:
        return None
    return t.detach().cpu().double().numpy().copy()


def _from_state(module: Any, name: str, prefix: str, state: Mapping[str, Any], used: set[str]) -> Any:
    import torch
    from torch.nn.utils import parametrize

    key = f"{prefix}.{name}" if prefix else name
    pkey = f"{prefix}.parametrizations.{name}" if prefix else f"parametrizations.{name}"
    if key + "_orig" in state and key + "_mask" in state:
        used.update((key + "_orig", key + "_mask"))
        t = state[key + "_orig"] * state[key + "_mask"]
    elif key in state:
        used.add(key)
        t = state[key]
    elif pkey + ".original" in state and parametrize.is_parametrized(module, name):
        sub = {k[len(pkey) + 1:]: v for k, v in state.items() if k.startswith(pkey + ".")}
        used.update(pkey + "." + k for k in sub)
        t = torch.func.functional_call(module.parametrizations[name], sub, ())
    elif getattr(module, name, None) is None:
        return None  # e.g. Linear(bias=False)
    else:
        raise GraphError(f"the weights do not fit the model: no entry {key!r}")
    want = tuple(getattr(module, name).shape)
    if tuple(t.shape) != want:
        raise GraphError(f"the weights do not fit the model: {key!r} has shape {tuple(t.shape)}, the model {want}")
    return t


def _lower(chain: Chain, name: str, m: Any, state: Mapping[str, Any] | None, used: set[str]) -> None:
    import torch.nn as nn

    where = f"{name or 'model'} ({type(m).__name__})"
    if isinstance(m, nn.Linear):
        w, b = effective(m, "weight", name, state, used), effective(m, "bias", name, state, used)
        k = chain.shape[-1]
        if w.shape[1] != k:
            raise GraphError(f"{where}: takes {w.shape[1]} features but the tensor before it has shape {chain.shape}")
        rows = chain.size // k
        out = chain.shape[:-1] + (w.shape[0],)
        if rows == 1:
            chain.dense(w, b, out, origin=where)
        else:  # a Linear on each row of a (rows, k) tensor
            dst, src, wt = left_data_edges(rows, k, w.T, lambda r, kk: r * k + kk)
            chain.edges(dst, src, wt, None if b is None else np.tile(b, rows), out, kind="dense", origin=where)
    elif isinstance(m, nn.Conv2d):
        k, st, pd = m.kernel_size, m.stride, m.padding
        if (isinstance(pd, str) or k[0] != k[1] or st[0] != st[1] or pd[0] != pd[1] or m.groups != 1
                or tuple(m.dilation) != (1, 1) or m.padding_mode != "zeros"):
            raise GraphError(f"{where}: the flowgraph reads square kernels with one stride and one zero padding, "
                             "no groups or dilation")
        chain.conv(effective(m, "weight", name, state, used), effective(m, "bias", name, state, used),
                   int(st[0]), int(pd[0]), origin=where)
    elif isinstance(m, nn.AvgPool2d):
        k = _square(m.kernel_size)
        st = k if m.stride is None else _square(m.stride)
        if k is None or st is None or m.padding not in (0, (0, 0)) or m.ceil_mode or m.divisor_override:
            raise GraphError(f"{where}: the flowgraph reads square average pools without padding, ceil mode or divisor")
        chain.avgpool(k, st, origin=where)
    elif isinstance(m, nn.ReLU):
        chain.relu(origin=where)
    elif isinstance(m, nn.Flatten):
        s = chain.shape
        start, end = m.start_dim, m.end_dim
        if start == 0:
            raise GraphError(f"{where}: start_dim=0 would merge the batch axis")
        start = start - 1 if start > 0 else start + len(s) + 1 - 1
        end = end - 1 if end > 0 else end + len(s)
        if not 0 <= start <= end < len(s):
            raise GraphError(f"{where}: dims {m.start_dim}..{m.end_dim} do not fit a tensor of shape {s}")
        chain.reshape(s[:start] + (int(np.prod(s[start:end + 1])),) + s[end + 1:], origin=where)
    elif isinstance(m, nn.Identity):
        pass
    elif isinstance(m, nn.Dropout):
        if m.training and m.p > 0:
            raise GraphError(f"{where}: the model is in training mode (random dropout); call model.eval() first")
    else:
        raise GraphError(f"{where} is not supported: from_torch reads {SUPPORTED} modules")


def _square(v: Any) -> int | None:
    if isinstance(v, int):
        return v
    v = tuple(v)
    return int(v[0]) if len(v) == 2 and v[0] == v[1] else None


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
            with warnings.catch_warnings():  # e.g. "pickle protocol 4": the refusal below says it in one line
                warnings.simplefilter("ignore")
                sd = torch.load(str(path), map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            text = str(exc)
            tail = text.split("WeightsUnpickler error:", 1)[-1].strip()
            detail = " ".join(tail.split("\n\n", 1)[0].split())
            raise GraphError(f"{path.name} is not a readable weights-only torch file ({detail[:160]}); "
                             "it holds pickled objects or is corrupt, and is never unpickled") from None
        except (RuntimeError, EOFError, ValueError, OSError) as exc:
            raise GraphError(f"{path.name} is not a readable torch weights file: {_short(exc)}") from None
        if isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
            sd = sd["state_dict"]
    else:
        raise GraphError(f"{path.name}: weights must be .safetensors, .pt or .pth")
    if not isinstance(sd, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in sd.items()):
        raise GraphError(f"{path.name} does not hold a state dict (names -> tensors)")
    return sd


def _check_state(state: Mapping[str, Any]) -> None:
    import torch

    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise GraphError(f"state dict entry {key!r} is not a tensor")
        if torch.is_floating_point(value) and not bool(torch.isfinite(value).all()):
            raise GraphError(f"state dict entry {key!r} has NaN or infinite values")


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:240] + ("..." if len(text) > 240 else "")
