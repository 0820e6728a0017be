"""DIC on OpenVINO's CPU runtime: the same network and weights, converted from torch, for the final step's outputs.

Why: on a CPU without AMX, OpenVINO's kernels run DIC faster than torch's. Measured on a 2-core AMD EPYC (AVX-512
with BF16, no AMX), x4 member, batch 16: torch fp32 40, OpenVINO fp32 55, torch bf16 82, OpenVINO bf16 105 faces/s;
limited to AVX2 (``ONEDNN_MAX_CPU_ISA=AVX2``): torch fp32 31, OpenVINO fp32 35. In fp32 the outputs equal torch's to
~1e-6.

**int8** (``precision: int8``; ``auto`` on a CPU without native bf16): NNCF's post-training quantisation of the
converted network, its activation ranges calibrated on faces that ship with scikit-image (``calibration_faces``),
the layers where rounding shows in the face kept in float (``INT8_FLOAT_LAYERS``: the input and output
convolutions and the landmark branch's stem and head). Measured on the AVX2-limited EPYC, x4, 300 CelebA test
faces: fp32 36.6 faces/s, 30.154 dB; all int8 56.5 faces/s, -0.052 dB; with those layers in float 51.6 faces/s,
-0.021 dB (calibrated on CelebA faces; see docs/video.md for the shipped calibration's figures).

Converting a member takes ~3 s (quantising it ~15 s more), so the converted network (OpenVINO IR) is cached on disk,
keyed by a hash of the weights, the configuration, int8 or not and the library versions: ``$DICFACE_CACHE_DIR`` or
``~/.cache/dicface``, ``openvino/``. A cache that cannot be written is skipped (the network is converted in memory
each run).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
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

OPENVINO_HINTS = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}  # our precision -> OpenVINO's hint (int8: the
# quantised layers run in int8 whatever the hint; the ones kept in float, in fp32)
# Layers int8 leaves in float (NNCF name patterns of the converted network): DIC's input and output convolutions
# and deconvolution, and its landmark branch's stem and heatmap head.
INT8_FLOAT_LAYERS = (r".*model\.conv_in\..*", r".*model\.conv_out\..*", r".*model\.out\..*",
                     r".*HG\.hg_conv_out.*", r".*HG\.pre_conv_block.*")
CALIBRATION_FACES = 64


def openvino_available() -> bool:
    """OpenVINO is installed (``pip install openvino``)."""
    return installed("openvino")


def int8_available() -> bool:
    """OpenVINO and NNCF (its quantiser) are installed."""
    return openvino_available() and installed("nncf")


def cache_dir() -> Path:
    """Where converted networks are kept: ``$DICFACE_CACHE_DIR``, else ``$XDG_CACHE_HOME/dicface`` or
    ``~/.cache/dicface``; the ``openvino`` folder in it."""
    root = os.environ.get("DICFACE_CACHE_DIR")
    if not root:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dicface"
    return Path(root) / "openvino"


class _FinalStep(nn.Module):
    """DIC's last step only. Shape: lr (B, 3F, S, S)[, seed (B, K, M, M)] -> (B, 3, O, O), (B, K, M, M) (O, M: the
    member's output and heatmap sizes, 128 and 32)."""

    def __init__(self, model: DIC) -> None:
        super().__init__()
        self.model = model

    def forward(self, lr: Tensor, seed: Tensor | None = None) -> tuple[Tensor, Tensor]:
        srs, heats = self.model(lr, seed)
        return srs[-1], heats[-1]


def network_key(model: DIC, seeded: bool, int8: bool = False) -> str:
    """A name for one conversion: the weights, the configuration, the input variant, int8 or not (with the layers
    kept in float and the quantiser's version) and the library versions."""
    import openvino

    quantised = (INT8_FLOAT_LAYERS, CALIBRATION_FACES, _version("nncf")) if int8 else None
    digest = hashlib.sha256(repr((model.cfg, seeded, quantised, openvino.__version__, torch.__version__)).encode())
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
        example += (torch.zeros(2, cfg.num_keypoints, cfg.heatmap_size, cfg.heatmap_size),)
        shapes.append(openvino.PartialShape([-1, cfg.num_keypoints, cfg.heatmap_size, cfg.heatmap_size]))
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracing warns of each shape check in DIC's forward; they hold for these
        return openvino.convert_model(_FinalStep(model.eval()), example_input=example, input=shapes)


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def calibration_faces(model: DIC, seeded: bool, count: int = CALIBRATION_FACES) -> list[tuple[np.ndarray, ...]]:
    """Inputs to calibrate int8 activation ranges on, in batches of 8: LR faces of the member's input size made as in
    training from the faces that ship with scikit-image (the astronaut, mirrored and shifted, and LFW faces, grey),
    as stills; with their heatmaps for the seeded network (the member's own estimate, as a tracker's seed would be).
    Shape: each batch (8, 3F, S, S)[, (8, K, M, M)] float32."""
    from skimage import data

    from dicface.models.faces import ASTRONAUT_FACE_BOX, hr_and_lr, lfw_faces, normalise_frames, still_frames

    x1, y1, x2, y2 = ASTRONAUT_FACE_BOX
    astronaut = data.astronaut()
    faces = [astronaut[y1 + dy : y2 + dy, x1 + dx : x2 + dx] for dx in (-8, 0, 8) for dy in (-8, 0, 8)]
    faces += [f[:, ::-1] for f in faces]
    faces += lfw_faces(count - len(faces))
    size, frames = model.cfg.input_size, model.cfg.frames
    hr_size = model.cfg.output_size
    lr = normalise_frames(still_frames(
        np.stack([hr_and_lr(np.ascontiguousarray(f), size, hr_size)[1] for f in faces]), frames))
    batches: list[tuple[np.ndarray, ...]] = []
    with torch.no_grad():
        for start in range(0, len(lr), 8):
            chunk = lr[start : start + 8]
            seed = model(chunk)[1][-1] if seeded else None
            batches.append((chunk.numpy(),) + (() if seed is None else (seed.numpy(),)))
    return batches


def _quantise(network: Any, model: DIC, seeded: bool) -> Any:
    """``network`` with int8 weights and activations but ``INT8_FLOAT_LAYERS`` (NNCF, mixed preset)."""
    import nncf

    logger.info("quantising a x%d DIC member to int8 (once: cached)", model.cfg.scale)
    batches = calibration_faces(model, seeded)
    logging.getLogger("nncf").setLevel(logging.ERROR)  # its INFO lists every layer kept in float
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):  # and it draws bars on stdout
        warnings.simplefilter("ignore")
        keep = nncf.IgnoredScope(patterns=list(INT8_FLOAT_LAYERS))
        return nncf.quantize(network, nncf.Dataset(batches, list), preset=nncf.QuantizationPreset.MIXED,
                             subset_size=len(batches), ignored_scope=keep)


def _cached_model(model: DIC, seeded: bool, int8: bool = False) -> Any:
    """Read the converted network from the cache, or convert it and store it there (a folder renamed into place,
    so a reader never sees half of one; a concurrent writer's folder is kept, a broken one replaced)."""
    import openvino

    folder = cache_dir() / network_key(model, seeded, int8)
    broken = folder.exists()
    if (folder / "dic.xml").is_file():
        with contextlib.suppress(RuntimeError):
            network = openvino.Core().read_model(folder / "dic.xml")
            logger.debug("OpenVINO network read from %s", folder)
            return network
    logger.info("converting a x%d DIC member for OpenVINO (once: cached in %s)", model.cfg.scale, folder.parent)
    converted = _convert(model, seeded)
    if int8:
        converted = _quantise(converted, model, seeded)
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

    Shape: lr (B, 3F, S, S) float32, seed None or (B, K, M, M) -> sr (B, 3, O, O), heatmaps (B, K, M, M).
    """

    def __init__(self, model: DIC, precision: str, threads: int) -> None:
        if not openvino_available():
            raise InputError("inference.backend openvino needs OpenVINO: pip install openvino")
        if precision not in OPENVINO_HINTS:
            raise InputError(f"the openvino backend runs fp32, bf16 or int8, not {precision}")
        if precision == "int8" and not int8_available():
            raise InputError("precision int8 needs NNCF, OpenVINO's quantiser: pip install nncf")
        import openvino

        self.model, self.int8 = model.eval(), precision == "int8"
        self.config = {"INFERENCE_PRECISION_HINT": OPENVINO_HINTS[precision], "INFERENCE_NUM_THREADS": threads,
                       "PERFORMANCE_HINT": "LATENCY"}
        self._core = openvino.Core()
        self._compiled: dict[bool, Any] = {}
        self._lock = threading.Lock()

    def _network(self, seeded: bool) -> Any:
        with self._lock:  # each input variant is converted (or read from the cache) and compiled on first use
            if seeded not in self._compiled:
                self._compiled[seeded] = self._core.compile_model(_cached_model(self.model, seeded, self.int8),
                                                                  "CPU", self.config)
            return self._compiled[seeded]

    def __call__(self, lr: Tensor, seed: Tensor | None = None) -> tuple[Tensor, Tensor]:
        network = self._network(seed is not None)
        inputs = [lr.float().numpy()] + ([] if seed is None else [seed.float().numpy()])
        request = network.create_infer_request()
        request.infer(inputs)
        sr, heat = (np.array(request.get_output_tensor(i).data) for i in range(2))
        return torch.from_numpy(sr), torch.from_numpy(heat)
