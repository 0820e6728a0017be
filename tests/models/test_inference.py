from __future__ import annotations

import numpy as np
import pytest
import torch

from configs.model import InferenceOptions
from models.dic import DIC
from models.errors import InputError
from models.inference import FaceSuperResolver, resolve_precision


@pytest.mark.parametrize("channels_last", [False, True])
def test_fast_path_matches_the_plain_path(tiny_model: DIC, channels_last: bool) -> None:
    lr = torch.rand(5, 3, 16, 16) - 0.45
    plain = FaceSuperResolver(tiny_model, InferenceOptions(fast=False))(lr)
    options = InferenceOptions(fast=True, precision="fp32", channels_last=channels_last, max_batch=2)
    fast = FaceSuperResolver(tiny_model, options)(lr)
    assert (plain.sr - fast.sr).abs().max() < 1e-3
    assert (plain.heatmaps - fast.heatmaps).abs().max() < 1e-3 * max(1.0, float(plain.heatmaps.abs().max()))


def test_fast_path_matches_on_the_released_configuration() -> None:
    torch.manual_seed(0)
    model = DIC()
    lr = torch.rand(1, 3, 16, 16) - 0.45
    plain = FaceSuperResolver(model, InferenceOptions(fast=False))(lr)
    fast = FaceSuperResolver(model, InferenceOptions(fast=True, precision="fp32", channels_last=True))(lr)
    assert (plain.sr - fast.sr).abs().max() < 1e-3


def test_seed_heatmaps_pass_through(tiny_model: DIC) -> None:
    lr = torch.rand(3, 3, 16, 16) - 0.45
    seed = torch.rand(3, 68, 32, 32)
    out = FaceSuperResolver(tiny_model, InferenceOptions(precision="fp32", max_batch=2))(lr, seed)
    with torch.no_grad():
        sr, _ = tiny_model(lr, seed)
    assert torch.allclose(out.sr, sr[-1], atol=1e-5)


def test_auto_precision_is_bf16_only_where_the_cpu_has_amx(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) == "fp32" and resolve_precision("bf16", cpu) == "bf16"
    monkeypatch.setattr("models.inference.cpu_has_amx", lambda: True)
    assert resolve_precision("auto", cpu) == "bf16"
    monkeypatch.setattr("models.inference.cpu_has_amx", lambda: False)
    assert resolve_precision("auto", cpu) == "fp32"
    assert FaceSuperResolver(DIC(), InferenceOptions(fast=False, precision="bf16")).precision == "fp32"


def test_bf16_on_the_cpu_stays_close_to_fp32(tiny_model: DIC) -> None:
    """What ``auto`` gives on an AMX CPU (emulated, slower, on one without): the same faces within bf16 rounding."""
    lr = torch.rand(4, 3, 16, 16) - 0.45
    fp32 = FaceSuperResolver(tiny_model, InferenceOptions(precision="fp32"))(lr)
    bf16 = FaceSuperResolver(tiny_model, InferenceOptions(precision="bf16"))(lr)
    assert (fp32.sr - bf16.sr).abs().mean() < 0.01


def test_empty_in_empty_out(tiny_model: DIC) -> None:
    run = FaceSuperResolver(tiny_model)
    assert run(torch.zeros(0, 3, 16, 16)).sr.shape == (0, 3, 128, 128)
    images, points = run.faces([])
    assert images.shape == (0, 128, 128, 3) and points.shape == (0, 68, 2)


def test_faces_of_any_size(tiny_model: DIC, real_faces: list[np.ndarray]) -> None:
    images, points = FaceSuperResolver(tiny_model).faces(real_faces)
    assert images.shape == (len(real_faces), 128, 128, 3) and images.dtype == np.uint8
    assert points.shape == (len(real_faces), 68, 2)


def test_bad_options_are_input_errors() -> None:
    with pytest.raises(InputError):
        InferenceOptions(precision="fp8")
    with pytest.raises(InputError):
        InferenceOptions(max_batch=0)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: asking for it is not an error")
def test_cuda_without_cuda_is_a_clear_error() -> None:
    with pytest.raises(InputError, match="CUDA is not available"):
        FaceSuperResolver(DIC(), InferenceOptions(device="cuda"))
