"""The packed forward's element-wise work, run eagerly or as kernels fused by ``torch.compile``.

Three groups of element-wise work sit between the matmuls of every layer: RMSNorm with its cast to the
matmul dtype, the per-head q/k RMSNorm with RoPE, and SwiGLU's ``silu(gate) * up``. Eager PyTorch runs
each operation of a group as its own pass over memory: on a 2-core AMX Xeon those passes took about 40 %
of an embedding forward whose matmuls run in bf16. ``torch.compile`` (inductor) writes each group as
one C++ loop nest, so a group reads its input once and writes its output once.

Compiling needs a C++ compiler and costs a few seconds per process (tens of seconds the first time on
a machine; torch keeps the result in its inductor cache). ``fuse`` decides when to pay it:

- ``off``: never; the eager kernels below.
- ``on``: when the model is loaded; without a C++ compiler, loading fails and names the fix.
- ``auto`` (default): at the first forward of at least :data:`AUTO_MIN_TOKENS` tokens on CPU, when a
  C++ compiler is found, so a query or a short job never waits for it, or earlier when the engine's
  ``warm_up()`` asks (``serve`` does at start); a failed compile is logged and the eager kernels stay.

Compiled and eager kernels compute the same formulas in fp32 and round once to the output dtype.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from typing import Any, get_args

from finesift.errors import InvalidRequest
from finesift.settings.base import FuseName

log = logging.getLogger(__name__)

FUSE_MODES: tuple[str, ...] = get_args(FuseName)
#: ``auto`` compiles at the first forward with this many tokens: smaller jobs never pay the compile.
AUTO_MIN_TOKENS = 4096
#: Tensors with fewer rows run eagerly: the saving is nil, and a one-row input would make torch
#: compile a second, specialised copy of the kernel.
MIN_ROWS = 16
#: Rows of the inputs the kernels are compiled on (any row count >= 2 reuses the same kernels).
_PROBE_ROWS = 64


def compiler_found() -> bool:
    """True when a C++ compiler that inductor can use is on PATH (``$CXX``, g++, c++ or clang++)."""
    names = [os.environ.get("CXX") or "", "g++", "c++", "clang++"]
    return any(name and shutil.which(name) for name in names)


# -- the formulas, eager ----------------------------------------------------------------------------


def rms_norm(x: Any, weight: Any, eps: float, dtype: Any) -> Any:
    """RMSNorm over the last dim, computed in fp32 and written in ``dtype``.

    Eager, as one reduction plus two multiplies, the second writing straight into ``dtype``: 2-3x
    cheaper than ``F.rms_norm``'s separate pow/mean/mul passes on CPU, and it rounds identically.
    """
    import torch

    n = x.shape[-1]
    scale = torch.linalg.vector_norm(x, dim=-1, keepdim=True, dtype=torch.float32)
    scale = scale.mul_(n**-0.5).square_().add_(eps).rsqrt_()
    out = torch.empty(x.shape, dtype=dtype, device=x.device)
    return torch.mul(torch.mul(x, scale), weight, out=out)


def rotate(x: Any, cos: Any, sin: Any) -> Any:
    """RoPE as transformers applies it, x * cos + rotate_half(x) * sin, in three passes."""
    half = x.shape[-1] // 2
    out = x * cos
    out[..., :half].addcmul_(x[..., half:], sin[..., :half], value=-1.0)
    out[..., half:].addcmul_(x[..., :half], sin[..., half:])
    return out


def qk_norm_rope(qk: Any, weight: Any, cos: Any, sin: Any, eps: float, dtype: Any) -> Any:
    """Per-head RMSNorm then RoPE of (tokens, heads, head_dim) q/k states, in fp32, written in ``dtype``."""
    import torch

    # A contiguous fp32 copy first: reducing over a strided bf16 slice costs more than the copy.
    x = qk.float()
    return rotate(rms_norm(x, weight, eps, torch.float32), cos, sin).to(dtype)


def silu_mul(gate_up: Any) -> Any:
    """SwiGLU's ``silu(gate) * up`` of a fused (tokens, 2 * intermediate) projection."""
    from torch.nn import functional as F

    gate, up = gate_up.chunk(2, dim=-1)
    return F.silu(gate).mul_(up)


# -- the same formulas, written for inductor to fuse ------------------------------------------------


def _norm_fusable(x: Any, weight: Any, eps: float, dtype: Any) -> Any:
    import torch

    xf = x.float()
    return (xf * torch.rsqrt(xf.square().mean(-1, keepdim=True) + eps) * weight).to(dtype)


def _qk_fusable(qk: Any, weight: Any, cos: Any, sin: Any, eps: float, dtype: Any) -> Any:
    import torch

    x = qk.float()
    x = x * torch.rsqrt(x.square().mean(-1, keepdim=True) + eps) * weight
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return (x * cos + rotated * sin).to(dtype)


def _silu_mul_fusable(gate_up: Any) -> Any:
    from torch.nn import functional as F

    gate, up = gate_up.chunk(2, dim=-1)
    return (F.silu(gate.float()) * up.float()).to(gate_up.dtype)


class Kernels:
    """The element-wise kernels one packed forward calls: eager until (and unless) compiled."""

    def __init__(self, mode: str, *, device: Any, shapes: dict[str, Any], dtype: Any) -> None:
        if mode not in FUSE_MODES:
            raise InvalidRequest(f"unknown fuse {mode!r}; choose one of {', '.join(FUSE_MODES)}")
        self.mode = mode if getattr(device, "type", str(device)) == "cpu" else "off"
        self.device, self.shapes, self.dtype = device, shapes, dtype
        self._compiled: dict[str, Any] | None = None
        self._given_up = False
        self._lock = threading.Lock()
        if self.mode == "on":
            if not compiler_found():
                raise InvalidRequest(
                    "fuse 'on' compiles CPU kernels with torch.compile and needs a C++ compiler "
                    "(install g++ or clang++, or set CXX); use fuse 'auto' or 'off'"
                )
            self._compile()

    @property
    def compiled(self) -> bool:
        return self._compiled is not None

    def prepare(self, tokens: int | None = None) -> None:
        """Compile before a forward of ``tokens`` tokens when ``auto`` says it is worth it.

        ``None`` is the warm-up of a process that will see large forwards (a server, a benchmark): it
        compiles now what ``auto`` would compile at the first large forward.
        """
        if self._compiled is not None or self._given_up or self.mode != "auto":
            return
        if tokens is not None and tokens < AUTO_MIN_TOKENS:
            return
        if not compiler_found():  # looked up once per engine, not on every large forward
            self._given_up = True
            log.info("no C++ compiler on PATH: the packed forward keeps its eager kernels")
            return
        with self._lock:
            if self._compiled is None and not self._given_up:
                try:
                    self._compile()
                except Exception as exc:  # any inductor failure leaves the eager kernels, which are exact
                    self._given_up = True
                    log.warning("fused CPU kernels could not be compiled; running eager kernels: %s", exc)

    def norm(self, x: Any, weight: Any, eps: float, dtype: Any) -> Any:
        if self._compiled is not None and x.shape[0] >= MIN_ROWS:
            return self._compiled["norm"](x, weight, eps, dtype)
        return rms_norm(x, weight, eps, dtype)

    def qk(self, qk: Any, weight: Any, cos: Any, sin: Any, eps: float) -> Any:
        if self._compiled is not None and qk.shape[0] >= MIN_ROWS:
            return self._compiled["qk"](qk, weight, cos, sin, eps, self.dtype)
        return qk_norm_rope(qk, weight, cos, sin, eps, self.dtype)

    def swiglu(self, gate_up: Any) -> Any:
        if self._compiled is not None and gate_up.shape[0] >= MIN_ROWS:
            return self._compiled["swiglu"](gate_up)
        return silu_mul(gate_up)

    def _compile(self) -> None:
        """Compile the three kernels with a dynamic row count by running them once on probe inputs."""
        import time

        import torch

        start = time.perf_counter()
        fns = {
            name: torch.compile(fn, fullgraph=True)
            for name, fn in (("norm", _norm_fusable), ("qk", _qk_fusable), ("swiglu", _silu_mul_fusable))
        }
        s = self.shapes
        # Weights are ordinary tensors and activations inference tensors, as in the forward: torch
        # guards on that, and a probe that differed would compile every kernel a second time.
        norm_w = torch.ones(s["hidden"], device=self.device)
        qk_w = torch.ones(s["heads"] + s["kv_heads"], s["head_dim"], device=self.device)
        with torch.inference_mode():
            for name, (args, rows) in self._probes(norm_w, qk_w).items():
                for arg in rows:
                    torch._dynamo.mark_dynamic(arg, 0)
                fns[name](*args)
        self._compiled = fns
        log.info("fused CPU kernels compiled in %.1f s", time.perf_counter() - start)

    def _probes(self, norm_w: Any, qk_w: Any) -> dict[str, tuple[tuple[Any, ...], tuple[Any, ...]]]:
        """Each kernel's probe arguments, shaped, strided and typed as the forward's own (only the row
        count differs), and those of them that carry the rows."""
        import torch

        s, n, dt = self.shapes, _PROBE_ROWS, self.dtype
        heads, width = s["heads"] + s["kv_heads"], (s["heads"] + 2 * s["kv_heads"]) * s["head_dim"]
        hidden = torch.zeros(n, s["hidden"], device=self.device)
        qk = torch.zeros(n, width, dtype=dt, device=self.device)[:, : heads * s["head_dim"]]
        qk = qk.view(n, heads, s["head_dim"])
        cos, sin = (torch.zeros(n, 1, s["head_dim"], device=self.device) for _ in range(2))
        gate_up = torch.zeros(n, 2 * s["intermediate"], dtype=dt, device=self.device)
        return {
            "norm": ((hidden, norm_w, s["eps"], dt), (hidden,)),
            "qk": ((qk, qk_w, cos, sin, s["eps"], dt), (qk, cos, sin)),
            "swiglu": ((gate_up,), (gate_up,)),
        }
