"""DIC on OpenVINO's CPU runtime: the same network and weights, converted from torch, for the final step's outputs.

Why: on a CPU without AMX, OpenVINO's kernels run DIC faster than torch's. Measured on a 2-core AMD EPYC (AVX-512
with BF16, no AMX), x4 member, batch 16: torch fp32 40, OpenVINO fp32 55, torch bf16 82, OpenVINO bf16 105 faces/s;
limited to AVX2 (``ONEDNN_MAX_CPU_ISA=AVX2``): torch fp32 31, OpenVINO fp32 35. In fp32 the outputs equal torch's to
~1e-6.

Converting a member takes ~3 s, so the converted network (OpenVINO IR) is cached on disk, keyed by a hash of the
weights, the configuration and the library versions: ``$DICFACE_CACHE_DIR`` or ``~/.cache/dicface``, ``openvino/``.
A cache that cannot be written is skipped (the network is converted in memory each run).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from dicface.models.dic import DIC
from dicface.models.errors import InputError
from dicface.models.extras import installed

logger = logging.getLogger(__name__)

OPENVINO_HINTS = {"fp32": "f32", "bf16": "bf16"}  # our precision -> OpenVINO's inference precision hint


def openvino_available() -> bool:
    """OpenVINO is installed (``pip install openvino``)."""
    return installed("openvino")


def cache_dir() -> Path:
    """Where converted networks are kept: ``$DICFACE_CACHE_DIR``, else ``$XDG_CACHE_HOME/dicface`` or
    ``~/.cache/dicface``; the ``openvino`` folder in it."""
    root = os.environ.get("DICFACE_CACHE_DIR")
    if not root:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dicface"
    return Path(root) / "openvino"


class _FinalStep(nn.Module):
    """DIC's last step only. Shape: lr (B, 3F, S, S)[, seed (B, K, 32, 32)] -> (B, 3, 128, 128), (B, K, 32, 32)."""

    def __init__(self, model: DIC) -> None:
        super().__init__()
        self.model = model

    def forward(self, lr: Tensor, seed: Tensor | None = None) -> tuple[Tensor, Tensor]:
        srs, heats = self.model(lr, seed)
        return srs[-1], heats[-1]


def network_key(model: DIC, seeded: bool) -> str:
    """A name for one conversion: the weights, the configuration, the input variant and the library versions."""
    import openvino

    digest = hashlib.sha256(repr((model.cfg, seeded, openvino.__version__, torch.__version__)).encode())
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().float().contiguous().numpy().tobytes())
    return digest.hexdigest()[:32]


def _convert(model: DIC, seeded: bool) -> Any:
    """The torch network as an OpenVINO model with a free batch dimension."""
    import openvino

    cfg = model.cfg
    lr = torch.zeros(2, cfg.in_channels * cfg.frames, cfg.input_size, cfg.input_size)
    shapes = [openvino.PartialShape([-1, *lr.shape[1:]])]
    example: tuple[Tensor, ...] = (lr,)
    if seeded:
        example += (torch.zeros(2, cfg.num_keypoints, 32, 32),)
        shapes.append(openvino.PartialShape([-1, cfg.num_keypoints, 32, 32]))
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracing warns of each shape check in DIC's forward; they hold for these
        return openvino.convert_model(_FinalStep(model.eval()), example_input=example, input=shapes)


def _cached_model(model: DIC, seeded: bool) -> Any:
    """Read the converted network from the cache, or convert it and store it there (a folder renamed into place,
    so a reader never sees half of one; a concurrent writer's folder is kept, a broken one replaced)."""
    import openvino

    folder = cache_dir() / network_key(model, seeded)
    broken = folder.exists()
    if (folder / "dic.xml").is_file():
        with contextlib.suppress(RuntimeError):
            network = openvino.Core().read_model(folder / "dic.xml")
            logger.debug("OpenVINO network read from %s", folder)
            return network
    logger.info("converting a x%d DIC member for OpenVINO (once: cached in %s)", model.cfg.scale, folder.parent)
    converted = _convert(model, seeded)
    with contextlib.suppress(OSError):
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".part-", dir=folder.parent))
        try:
            openvino.save_model(converted, tmp / "dic.xml", compress_to_fp16=False)
            if broken:
                shutil.rmtree(folder, ignore_errors=True)
            os.rename(tmp, folder)  # fails where another process has just stored the same network: kept
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    if not (folder / "dic.xml").is_file():
        logger.debug("OpenVINO cache %s could not be written; converting again next time", folder.parent)
    return converted


class OpenVINONetwork:
    """Callable like DIC for its final step, on OpenVINO's CPU plugin. Thread-safe (a request per call).

    Shape: lr (B, 3F, S, S) float32, seed None or (B, K, 32, 32) -> sr (B, 3, 128, 128), heatmaps (B, K, 32, 32).
    """

    def __init__(self, model: DIC, precision: str, threads: int) -> None:
        if not openvino_available():
            raise InputError("inference.backend openvino needs OpenVINO: pip install openvino")
        if precision not in OPENVINO_HINTS:
            raise InputError(f"the openvino backend runs fp32 or bf16, not {precision}")
        import openvino

        self.model = model.eval()
        self.config = {"INFERENCE_PRECISION_HINT": OPENVINO_HINTS[precision], "INFERENCE_NUM_THREADS": threads,
                       "PERFORMANCE_HINT": "LATENCY"}
        self._core = openvino.Core()
        self._compiled: dict[bool, Any] = {}
        self._lock = threading.Lock()

    def _network(self, seeded: bool) -> Any:
        with self._lock:  # each input variant is converted (or read from the cache) and compiled on first use
            if seeded not in self._compiled:
                self._compiled[seeded] = self._core.compile_model(_cached_model(self.model, seeded), "CPU",
                                                                  self.config)
            return self._compiled[seeded]

    def __call__(self, lr: Tensor, seed: Tensor | None = None) -> tuple[Tensor, Tensor]:
        network = self._network(seed is not None)
        inputs = [lr.float().numpy()] + ([] if seed is None else [seed.float().numpy()])
        request = network.create_infer_request()
        request.infer(inputs)
        sr, heat = (np.array(request.get_output_tensor(i).data) for i in range(2))
        return torch.from_numpy(sr), torch.from_numpy(heat)
