"""Optional int8 dynamic quantization of linear layers on CPU.

Weights are stored int8 per output channel; activations are quantized per batch on the fly.
Embeddings, norms and attention stay fp32. Fidelity is measured in ``benchmarks/run.py``.
"""

from __future__ import annotations

import warnings
from typing import Any

from finesift.errors import MissingDependency


def quantize_linear_int8(model: Any) -> Any:
    """``model`` (fp32, CPU) with every ``nn.Linear`` replaced by a dynamic int8 one."""
    import torch

    with warnings.catch_warnings():
        # torch.ao.quantization is deprecated in favour of torchao but still ships with torch; its
        # warnings say so and nothing else.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantize_per_(tensor|channel).*", category=UserWarning)
        try:
            from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic
        except ImportError as exc:
            raise MissingDependency(
                "torch.ao.quantization", "transformers", "this torch build has no int8 dynamic quantization"
            ) from exc
        spec = {torch.nn.Linear: per_channel_dynamic_qconfig}
        return quantize_dynamic(model, spec, dtype=torch.qint8, inplace=True)
