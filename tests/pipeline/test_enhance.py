from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dicface.models.dic import DIC
from dicface.models.inference import FaceSuperResolver
from dicface.pipeline.enhance import Enhancer
from dicface.pipeline.types import FaceCrop


def crops() -> list[FaceCrop]:
    rng = np.random.default_rng(0)
    seed = (rng.random((68, 2)) * 80 + 24).astype(np.float32)
    return [
        FaceCrop(0, 1, (10.0, 20.0, 42.0, 52.0), rng.integers(0, 255, (16, 16, 3), dtype=np.uint8), seed),
        FaceCrop(0, 2, (60.0, 20.0, 84.0, 44.0), rng.integers(0, 255, (16, 16, 3), dtype=np.uint8), None),
        FaceCrop(1, 1, (11.0, 20.0, 43.0, 52.0), rng.integers(0, 255, (16, 16, 3), dtype=np.uint8), seed),
    ]


def test_order_shapes_and_frame_coordinates(tiny_model: DIC) -> None:
    faces = Enhancer(FaceSuperResolver(tiny_model), seed="tracker")(crops())
    assert [(f.frame_index, f.track_id) for f in faces] == [(0, 1), (0, 2), (1, 1)]
    for face, crop in zip(faces, crops(), strict=True):
        assert face.sr.shape == (128, 128, 3) and face.landmarks.shape == (68, 2) and face.box == crop.box
        x1, _, x2, _ = crop.box
        assert (face.landmarks[:, 0] >= x1 - 1).all() and (face.landmarks[:, 0] <= x2 + 1).all()


def test_seeding_changes_only_seeded_faces(tiny_model: DIC) -> None:
    resolver = FaceSuperResolver(tiny_model)
    seeded = Enhancer(resolver, seed="tracker")(crops())
    plain = Enhancer(resolver, seed="none")(crops())
    assert not np.array_equal(seeded[0].sr, plain[0].sr)
    assert np.array_equal(seeded[1].sr, plain[1].sr)  # no landmarks: runs unseeded either way
    assert Enhancer(resolver)([]) == []
    with pytest.raises(ValueError):
        Enhancer(resolver, seed="dlib")


def test_crops_go_to_the_member_of_their_size_in_batches(tiny_model: DIC) -> None:
    from dataclasses import replace

    import torch

    from dicface.configs.model import InferenceOptions
    from tests.conftest import TINY

    torch.manual_seed(1)
    on_torch = InferenceOptions(backend="torch")  # the calls are counted by a hook on the torch network
    x4 = FaceSuperResolver(DIC(replace(TINY, scale=4)).eval(), on_torch)
    x8 = FaceSuperResolver(tiny_model, on_torch)
    calls: list[tuple[int, ...]] = []
    for resolver in (x4, x8):
        resolver.model.register_forward_hook(lambda _m, args, _o: calls.append(tuple(args[0].shape)))
    rng = np.random.default_rng(0)
    mixed = [FaceCrop(0, i, (0.0, 0.0, 20.0 * (1 + i % 2), 20.0 * (1 + i % 2)),
                      rng.integers(0, 255, (16 * (1 + i % 2),) * 2 + (3,), dtype=np.uint8), None) for i in range(4)]
    enhancer = Enhancer([x8, x4], seed="none")
    faces = enhancer(mixed)
    assert enhancer.input_sizes == (16, 32) and [f.track_id for f in faces] == [0, 1, 2, 3]
    assert sorted(calls) == [(2, 3, 16, 16), (2, 3, 32, 32)]  # one batch per member
    alone = Enhancer(x4, seed="none")([mixed[1]])
    assert np.array_equal(alone[0].sr, faces[1].sr)
    with pytest.raises(ValueError, match="no DIC member"):
        Enhancer(x8)(mixed)


def test_a_multi_frame_member_takes_each_crops_context_or_the_crop_again() -> None:
    from dataclasses import replace

    import torch

    from tests.conftest import TINY

    torch.manual_seed(0)
    member = DIC(replace(TINY, frames=3)).eval()
    enhancer = Enhancer(FaceSuperResolver(member))
    assert {s: c.frames for s, c in enhancer.configs.items()} == {16: 3}
    crop = crops()[0]
    rng = np.random.default_rng(1)
    earlier = rng.integers(0, 255, (2, 16, 16, 3), dtype=np.uint8)
    alone, again, moving = enhancer([crop, replace(crop, context=np.stack([crop.lr, crop.lr])),
                                     replace(crop, context=earlier)])
    assert np.array_equal(alone.sr, again.sr)  # no context: the crop stands in for its earlier frames
    assert not np.array_equal(alone.sr, moving.sr)


def test_one_loader_builds_each_member_once_and_again_when_its_file_changes(tiny_weights: Path) -> None:
    import os
    from dataclasses import replace

    from dicface.configs.model import InferenceOptions
    from dicface.configs.schema import EnhanceConfig, ModelConfig, RunConfig
    from dicface.pipeline.enhance import load_enhancer, load_members

    model, options = ModelConfig(weights=str(tiny_weights)), InferenceOptions(backend="torch")
    (first, record), = load_members(model, options)
    assert load_members(model, options)[0][0] is first and record.file == tiny_weights
    assert first.model.cfg.num_steps == record.config.num_steps  # fp32: as trained
    assert load_members(replace(model, num_steps=2), options)[0][0].model.cfg.num_steps == 2
    assert load_members(model, InferenceOptions(backend="torch", max_batch=4))[0][0] is not first  # other options
    enhancer, records = load_enhancer(RunConfig(model=model, inference=options, enhance=EnhanceConfig(seed="none")))
    assert enhancer.resolvers[16] is first and records == [record] and enhancer.seed == "none"
    stat = tiny_weights.stat()
    os.utime(tiny_weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a new file at the same path
    assert load_members(model, options)[0][0] is not first


def test_a_large_face_member_outputs_its_own_size_seeded_in_its_own_frame() -> None:
    """A member for large faces (x2 with a 192-px output: 96-px crops) beside a 128-px one: each crop's SR face has
    its member's output size, its landmarks come back in frame pixels, and the tracked seed (128-px crop frame) is
    drawn where that member's output has the face."""
    from dataclasses import replace

    import torch

    from dicface.configs.model import InferenceOptions
    from dicface.models.heatmaps import render_heatmaps
    from tests.conftest import TINY

    torch.manual_seed(2)
    on_torch = InferenceOptions(backend="torch")
    large = FaceSuperResolver(DIC(replace(TINY, scale=2, output_size=192)).eval(), on_torch)
    small = FaceSuperResolver(DIC(replace(TINY, scale=2)).eval(), on_torch)
    seeds: list[torch.Tensor] = []
    large.model.register_forward_hook(lambda _m, args, _o: seeds.append(args[1]))
    rng = np.random.default_rng(0)
    seed = rng.uniform(30, 100, (68, 2)).astype(np.float32)
    box = (10.0, 20.0, 106.0, 116.0)
    crops = [FaceCrop(0, 1, box, rng.integers(0, 255, (96, 96, 3), dtype=np.uint8), seed),
             FaceCrop(0, 2, box, rng.integers(0, 255, (64, 64, 3), dtype=np.uint8), seed)]
    enhancer = Enhancer([small, large])
    faces = enhancer(crops)
    assert enhancer.input_sizes == (64, 96) and [f.sr.shape for f in faces] == [(192, 192, 3), (128, 128, 3)]
    assert {s: c.name for s, c in enhancer.configs.items()} == {64: "x2", 96: "x2/192"}
    expected = render_heatmaps((seed + 0.5) * 1.5 - 0.5, 48)[None]
    assert len(seeds) == 1 and torch.allclose(seeds[0], expected, atol=1e-6)
    for face in faces:  # landmarks in frame pixels, within the crop box
        assert (face.landmarks >= np.array(box[:2]) - 1).all() and (face.landmarks <= np.array(box[2:]) + 1).all()
