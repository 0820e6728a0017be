from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from dicface.configs.model import InferenceOptions
from dicface.models.dic import DIC
from dicface.models.errors import InputError
from dicface.models.inference import (
    FaceSuperResolver,
    cpu_has_bf16,
    cpu_summary,
    resolve_backend,
    resolve_precision,
    resolve_steps,
)
from dicface.models.openvino_net import network_key

BACKENDS = ("torch", "openvino")


@pytest.mark.parametrize("channels_last", [False, True])
def test_fast_path_matches_the_plain_path(tiny_model: DIC, channels_last: bool) -> None:
    lr = torch.rand(5, 3, 16, 16) - 0.45
    plain = FaceSuperResolver(tiny_model, InferenceOptions(fast=False))(lr)
    options = InferenceOptions(fast=True, precision="fp32", backend="torch", channels_last=channels_last, max_batch=2)
    fast = FaceSuperResolver(tiny_model, options)(lr)
    assert (plain.sr - fast.sr).abs().max() < 1e-3
    assert (plain.heatmaps - fast.heatmaps).abs().max() < 1e-3 * max(1.0, float(plain.heatmaps.abs().max()))


def test_fast_path_matches_on_the_released_configuration() -> None:
    torch.manual_seed(0)
    model = DIC()
    lr = torch.rand(1, 3, 16, 16) - 0.45
    plain = FaceSuperResolver(model, InferenceOptions(fast=False))(lr)
    for backend in BACKENDS:
        options = InferenceOptions(fast=True, precision="fp32", backend=backend, channels_last=True)
        assert (plain.sr - FaceSuperResolver(model, options)(lr).sr).abs().max() < 1e-3


@pytest.mark.parametrize("backend", BACKENDS)
def test_seed_heatmaps_pass_through(tiny_model: DIC, backend: str) -> None:
    tiny_model = DIC(replace(tiny_model.cfg, num_steps=2)).eval()  # in a random network the seed's effect fades
    lr = torch.rand(3, 3, 16, 16) - 0.45
    seed = torch.rand(3, 68, 32, 32)
    out = FaceSuperResolver(tiny_model, InferenceOptions(precision="fp32", backend=backend, max_batch=2))(lr, seed)
    unseeded = FaceSuperResolver(tiny_model, InferenceOptions(precision="fp32", backend=backend))(lr)
    with torch.no_grad():
        sr, heat = tiny_model(lr, seed)
        plain_sr, _ = tiny_model(lr)
    assert torch.allclose(out.sr, sr[-1], atol=1e-5) and torch.allclose(out.heatmaps, heat[-1], atol=1e-4)
    assert torch.allclose(unseeded.sr, plain_sr[-1], atol=1e-5)
    assert (sr[-1] - plain_sr[-1]).abs().max() > 1e-4  # so the seed is used, not ignored (atol 1e-5 above)


def test_auto_precision_is_bf16_only_where_the_cpu_computes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) == "fp32" and resolve_precision("bf16", cpu) == "bf16"
    monkeypatch.setattr("dicface.models.inference.cpu_has_bf16", lambda: True)
    assert resolve_precision("auto", cpu) == "bf16"
    monkeypatch.setattr("dicface.models.inference.cpu_has_bf16", lambda: False)
    assert resolve_precision("auto", cpu) == "fp32"
    assert FaceSuperResolver(DIC(), InferenceOptions(fast=False, precision="bf16")).precision == "fp32"


def test_an_isa_limit_below_bf16_rules_native_bf16_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """``ONEDNN_MAX_CPU_ISA=AVX2`` stands in for an older CPU: bf16 would be emulated there (20x slower)."""
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    monkeypatch.setattr("dicface.models.inference.cpu_has_amx", lambda: False)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert not cpu_has_bf16() and "no native bf16" in cpu_summary() and "ONEDNN_MAX_CPU_ISA=AVX2" in cpu_summary()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "avx512_core_bf16")
    assert cpu_has_bf16()
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    assert cpu_has_bf16()


@pytest.mark.parametrize("backend", BACKENDS)
def test_bf16_on_the_cpu_stays_close_to_fp32(tiny_model: DIC, backend: str) -> None:
    """What ``auto`` gives on a CPU with native bf16 (emulated, slower, on one without): the same faces within bf16
    rounding."""
    if backend == "openvino" and not cpu_has_bf16():
        pytest.skip("OpenVINO runs bf16 only where the CPU computes it natively")
    lr = torch.rand(4, 3, 16, 16) - 0.45
    fp32 = FaceSuperResolver(tiny_model, InferenceOptions(precision="fp32", backend="torch"))(lr)
    bf16 = FaceSuperResolver(tiny_model, InferenceOptions(precision="bf16", backend=backend))(lr)
    assert (fp32.sr - bf16.sr).abs().mean() < 0.01


def test_auto_backend_is_openvino_for_the_cpu_fast_path_only(
    tiny_model: DIC, monkeypatch: pytest.MonkeyPatch
) -> None:
    cpu = torch.device("cpu")
    monkeypatch.setattr("dicface.models.inference.cpu_has_bf16", lambda: True)
    assert resolve_backend(InferenceOptions(), cpu, "fp32") == "openvino"
    assert resolve_backend(InferenceOptions(), cpu, "bf16") == "openvino"
    # OpenVINO cannot emulate bf16: torch does
    monkeypatch.setattr("dicface.models.inference.cpu_has_bf16", lambda: False)
    assert resolve_backend(InferenceOptions(), cpu, "bf16") == "torch"
    with pytest.raises(InputError, match="natively"):
        resolve_backend(InferenceOptions(backend="openvino"), cpu, "bf16")
    assert resolve_backend(InferenceOptions(), cpu, "fp16") == "torch"
    assert resolve_backend(InferenceOptions(compile=True), cpu, "fp32") == "torch"
    assert resolve_backend(InferenceOptions(fast=False), cpu, "fp32") == "torch"
    assert resolve_backend(InferenceOptions(), torch.device("cuda"), "bf16") == "torch"
    assert resolve_backend(InferenceOptions(backend="torch"), cpu, "fp32") == "torch"
    with pytest.raises(InputError, match="in fp32"):
        resolve_backend(InferenceOptions(backend="openvino"), cpu, "fp16")
    assert FaceSuperResolver(tiny_model, InferenceOptions(fast=False)).backend == "torch"


def test_openvino_missing_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("dicface.models.inference.openvino_available", lambda: False)
    cpu = torch.device("cpu")
    assert resolve_backend(InferenceOptions(), cpu, "fp32") == "torch"
    with pytest.raises(InputError, match="pip install openvino"):
        resolve_backend(InferenceOptions(backend="openvino"), cpu, "fp32")


def test_converted_networks_are_cached_and_a_broken_cache_is_skipped(
    tiny_model: DIC, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lr = torch.rand(2, 3, 16, 16) - 0.45
    options = InferenceOptions(precision="fp32", backend="openvino")
    monkeypatch.setenv("DICFACE_CACHE_DIR", str(tmp_path / "cache"))
    first = FaceSuperResolver(tiny_model, options)(lr)
    stored = list((tmp_path / "cache" / "openvino").iterdir())
    assert [p.name for p in stored] == [network_key(tiny_model, seeded=False)]
    assert (stored[0] / "dic.xml").is_file() and (stored[0] / "dic.bin").is_file()
    assert torch.allclose(FaceSuperResolver(tiny_model, options)(lr).sr, first.sr, atol=1e-5)  # from the cache
    (tmp_path / "blocked").write_text("a file where the cache folder should be")
    monkeypatch.setenv("DICFACE_CACHE_DIR", str(tmp_path / "blocked"))
    assert torch.allclose(FaceSuperResolver(tiny_model, options)(lr).sr, first.sr, atol=1e-5)
    other = DIC(tiny_model.cfg)
    assert network_key(other, seeded=False) != network_key(tiny_model, seeded=False)  # other weights, other key


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


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (run on a device machine)")
@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_the_cuda_path_matches_the_cpu(tiny_model: DIC, precision: str) -> None:
    lr, seed = torch.rand(5, 3, 16, 16) - 0.45, torch.rand(5, 68, 32, 32)
    cpu = FaceSuperResolver(tiny_model, InferenceOptions(device="cpu", precision="fp32", backend="torch"))(lr, seed)
    gpu_model = DIC(tiny_model.cfg)
    gpu_model.load_state_dict(tiny_model.state_dict())
    run = FaceSuperResolver(gpu_model, InferenceOptions(device="cuda", precision=precision, max_batch=2))
    out = run(lr, seed)
    assert run.backend == "torch" and out.sr.device.type == "cpu" and out.sr.dtype == torch.float32
    assert (out.sr - cpu.sr).abs().mean() < (1e-4 if precision == "fp32" else 0.01)


def test_a_broken_cached_network_is_converted_again_and_replaced(
    tiny_model: DIC, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DICFACE_CACHE_DIR", str(tmp_path))
    lr = torch.rand(2, 3, 16, 16) - 0.45
    folder = tmp_path / "openvino" / network_key(tiny_model, seeded=False)
    folder.mkdir(parents=True)
    (folder / "dic.xml").write_text("<not a network")
    out = FaceSuperResolver(tiny_model, InferenceOptions(precision="fp32", backend="openvino"))(lr)
    with torch.no_grad():
        assert torch.allclose(out.sr, tiny_model(lr)[0][-1], atol=1e-5)
    assert (folder / "dic.bin").is_file() and "<not a network" not in (folder / "dic.xml").read_text()


def test_auto_precision_is_int8_on_openvino_where_the_cpu_has_no_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = torch.device("cpu")
    monkeypatch.setattr("dicface.models.inference.cpu_has_bf16", lambda: False)
    assert resolve_precision("auto", cpu, InferenceOptions()) == "int8"
    assert resolve_backend(InferenceOptions(), cpu, "int8") == "openvino"
    for torch_only in (InferenceOptions(backend="torch"), InferenceOptions(compile=True)):
        assert resolve_precision("auto", cpu, torch_only) == "fp32"
    with pytest.raises(InputError, match="int8 runs on OpenVINO"):
        resolve_backend(InferenceOptions(backend="torch"), cpu, "int8")
    monkeypatch.setattr("dicface.models.inference.int8_available", lambda: False)  # no NNCF
    assert resolve_precision("auto", cpu, InferenceOptions()) == "fp32"
    monkeypatch.setattr("dicface.models.inference.cpu_has_bf16", lambda: True)
    assert resolve_precision("auto", cpu, InferenceOptions()) == "bf16"


def test_auto_steps_are_one_fewer_where_dic_runs_in_int8(monkeypatch: pytest.MonkeyPatch) -> None:
    """int8 runs where the CPU has no native bf16 and DIC is most of a frame's time: there the last recurrent step
    is left out (measured: -0.02 dB at x4, level on video); steps given are kept, on every path."""
    assert resolve_steps(None, 4, InferenceOptions(precision="int8")) == 3
    assert resolve_steps(None, 4, InferenceOptions(precision="fp32")) == 4
    assert resolve_steps(None, 4, InferenceOptions(precision="int8", fast=False)) == 4  # the plain path is fp32
    assert resolve_steps(None, 1, InferenceOptions(precision="int8")) == 1
    assert resolve_steps(2, 4, InferenceOptions(precision="int8")) == 2
    monkeypatch.setattr("dicface.models.inference.cpu_has_bf16", lambda: False)
    assert resolve_steps(None, 4, InferenceOptions()) == 3
    monkeypatch.setattr("dicface.models.inference.cpu_has_bf16", lambda: True)
    assert resolve_steps(None, 4, InferenceOptions()) == 4


def test_int8_stays_close_to_fp32_and_is_cached_apart(
    tiny_model: DIC, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """int8 is NNCF's quantisation of the converted network, calibrated on the faces scikit-image ships: the same
    faces within int8 rounding, seeded or not, stored beside the fp32 network under its own key."""
    monkeypatch.setenv("DICFACE_CACHE_DIR", str(tmp_path))
    lr, seed = torch.rand(4, 3, 16, 16) - 0.45, torch.rand(4, 68, 32, 32)
    fp32 = FaceSuperResolver(tiny_model, InferenceOptions(precision="fp32", backend="openvino"))
    int8 = FaceSuperResolver(tiny_model, InferenceOptions(precision="int8"))
    assert int8.backend == "openvino"
    for heat in (None, seed):
        a, b = fp32(lr, heat).sr, int8(lr, heat).sr
        assert 0 < (a - b).abs().mean() < 0.02
    stored = {p.name for p in (tmp_path / "openvino").iterdir()}
    assert {network_key(tiny_model, seeded=s, int8=q) for s in (False, True) for q in (False, True)} == stored
