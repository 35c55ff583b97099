"""Bring your own model: ONNX files and torch modules in, flowgraphs out.

* ``from_onnx(path)``: an ONNX model (torch's legacy and dynamo exporters,
  or any chain of the supported ops) -> ``Flowgraph``;
* ``from_torch(module, input_shape)``: an ``nn.Sequential`` of Linear, ReLU,
  Flatten ... including ``torch.nn.utils.prune`` / ``parametrize`` pruning;
* ``load_state_dict(path)``: safetensors, or ``torch.load(weights_only=True)``;
  ``from_torch(model, state_dict=path)`` reads such weights for ``model``;
* ``parse_box`` / ``annotate_box`` / ``load_samples`` / ``load_labels``: the
  input box and labels a user gives; ``open_model``: all of it for one file.

Importing this package loads neither torch nor onnx; each reader imports
its library when called.
"""

from ._inputs import BoxSpec, annotate_box, load_labels, load_samples, parse_box
from ._model import ImportedModel, is_model_file, open_model
from ._onnx import OnnxError, from_onnx
from ._torch import from_torch, load_state_dict

__all__ = [
    "BoxSpec",
    "ImportedModel",
    "OnnxError",
    "annotate_box",
    "from_onnx",
    "from_torch",
    "is_model_file",
    "load_labels",
    "load_samples",
    "load_state_dict",
    "open_model",
    "parse_box",
]
