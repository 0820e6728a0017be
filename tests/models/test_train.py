"""Training pairs, the loss going down, exact resume, landmark-branch freezing (tiny model, CPU, seconds)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dicface.configs.model import TrainConfig
from dicface.models.data import FLIP_68, FacePairs, read_landmarks
from dicface.models.errors import CheckpointError, InputError
from dicface.models.faces import resize_bicubic
from dicface.models.heatmaps import decode_landmarks
from dicface.models.imageio import write_png
from dicface.models.train import Trainer, dic_loss, heatmap_loss, set_hg_trainable
from tests.conftest import TINY


@pytest.fixture(scope="module")
def photo_set(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two real face photos (the astronaut and its mirror image) and their dlib landmarks."""
    from skimage import data

    from dicface.pipeline.detect.dlib_backend import DlibDetector

    folder = tmp_path_factory.mktemp("photos")
    photo = np.ascontiguousarray(data.astronaut()[0:260, 100:360])
    detector = DlibDetector()
    table = {}
    for name, image in (("a.png", photo), ("b.png", np.ascontiguousarray(photo[:, ::-1]))):
        write_png(image, folder / name)
        table[name] = detector(image)[0].landmarks.tolist()
    landmarks = folder / "landmarks.json"
    landmarks.write_text(json.dumps(table))
    return folder, landmarks


def test_pairs_follow_the_spec(photo_set: tuple[Path, Path], tmp_path: Path) -> None:
    folder, landmarks = photo_set
    pairs = FacePairs.from_folder(folder, landmarks, cache_dir=tmp_path)
    assert pairs.hr.shape == (2, 128, 128, 3) and pairs.landmarks.shape == (2, 68, 2)
    assert len(list(tmp_path.glob("pairs_*.npz"))) == 1
    cached = FacePairs.from_folder(folder, landmarks, cache_dir=tmp_path)
    assert np.array_equal(cached.hr, pairs.hr)
    lr, hr, points = pairs.sample(0, flip=False)
    assert np.array_equal(lr, resize_bicubic(hr, 16))
    inner = points.max(axis=0) - points.min(axis=0)
    assert 128 / 1.7 < inner.max() < 128 / 1.4  # the crop is ~1.55x the landmark extent
    batch = pairs.batch(seed=0, iteration=0, size=2, flip=False)
    assert batch["lr"].shape == (2, 3, 16, 16) and batch["hr"].shape == (2, 3, 128, 128)
    assert (decode_landmarks(batch["heatmaps"]) - batch["landmarks"]).abs().max() < 0.05


def test_flip_mirrors_pixels_and_swaps_landmark_sides(photo_set: tuple[Path, Path]) -> None:
    pairs = FacePairs.from_folder(*photo_set)
    _, hr, points = pairs.sample(0, flip=False)
    _, hr_f, points_f = pairs.sample(0, flip=True)
    assert np.array_equal(hr_f, hr[:, ::-1])
    assert np.allclose(points_f[45], [127 - points[36, 0], points[36, 1]])  # outer eye corners swap
    assert np.allclose(points_f[8], [127 - points[8, 0], points[8, 1]])  # chin stays the chin
    assert sorted(FLIP_68.tolist()) == list(range(68))
    # the mirrored photo's own landmarks agree with the flipped ones (dlib on real pixels, a few px)
    assert np.abs(pairs.landmarks[1] - points_f).mean() < 3.0


def test_bad_landmark_files(tmp_path: Path) -> None:
    path = tmp_path / "l.json"
    path.write_text(json.dumps({"a.png": [[1, 2]] * 5}))
    with pytest.raises(InputError, match="68"):
        read_landmarks(path)


def _config(folder: Path, landmarks: Path, out: Path, **kw: object) -> TrainConfig:
    base = {"train_images": str(folder), "train_landmarks": str(landmarks), "out_dir": str(out), "model": TINY,
                "batch_size": 2, "iterations": 40, "lr": 1e-3, "milestones": (1000,), "log_every": 10, "val_every": 20}
    return TrainConfig(**{**base, **kw})


def test_a_few_iterations_reduce_the_loss(photo_set: tuple[Path, Path], tmp_path: Path) -> None:
    cfg = _config(*photo_set, tmp_path / "run")
    trainer = Trainer(cfg, FacePairs.from_folder(*photo_set), None)
    losses = [trainer.step()["loss"] for _ in range(40)]
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])


def test_resume_reproduces_the_next_step(photo_set: tuple[Path, Path], tmp_path: Path) -> None:
    data = FacePairs.from_folder(*photo_set)
    val = (data.hr, data.landmarks)
    cfg = _config(*photo_set, tmp_path / "run", iterations=20, val_every=20)
    first = Trainer(cfg, data, val)
    first.run()
    assert (tmp_path / "run" / "last.pt").is_file() and (tmp_path / "run" / "best.pt").is_file()
    log = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert log[0].startswith("iteration,") and log[-1].split(",")[0] == "20"
    expected = first.step()["loss"]
    resumed = Trainer(cfg, data, val)
    resumed.resume(tmp_path / "run" / "last.pt")
    assert resumed.iteration == 20
    assert resumed.step()["loss"] == pytest.approx(expected, rel=1e-6)
    # a state written before `output_size` existed resumes (a missing field is its default); another model does not
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    del state["model_config"]["output_size"]
    torch.save(state, tmp_path / "old.pt")
    Trainer(cfg, data, val).resume(tmp_path / "old.pt")
    state["model_config"]["num_features"] += 8
    torch.save(state, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="trained with"):
        Trainer(cfg, data, val).resume(tmp_path / "other.pt")


def test_freezing_really_freezes_the_landmark_branch(photo_set: tuple[Path, Path], tmp_path: Path) -> None:
    cfg = _config(*photo_set, tmp_path / "run", freeze_hg_iterations=3)
    trainer = Trainer(cfg, FacePairs.from_folder(*photo_set), None)
    hg_before = {k: v.clone() for k, v in trainer.model.HG.state_dict().items()}
    rest_before = trainer.model.conv_in[0].weight.clone()
    for _ in range(3):
        trainer.step()
    assert all(torch.equal(v, trainer.model.HG.state_dict()[k]) for k, v in hg_before.items())
    assert not torch.equal(rest_before, trainer.model.conv_in[0].weight)
    trainer.step()  # iteration 3: released
    assert any(not torch.equal(v, trainer.model.HG.state_dict()[k]) for k, v in hg_before.items())
    set_hg_trainable(trainer.model, True)


def test_heatmap_loss_is_dic_mse_without_foreground_weight() -> None:
    gt = torch.rand(2, 68, 32, 32)
    heats = [torch.rand(2, 68, 32, 32) for _ in range(3)]
    expected = sum(torch.nn.functional.mse_loss(h, gt) for h in heats)
    assert heatmap_loss(heats, gt).item() == pytest.approx(expected.item(), rel=1e-6)
    assert heatmap_loss(heats, gt, foreground=5.0) > heatmap_loss(heats, gt)


def test_hg_stage_trains_only_the_landmark_branch_and_keeps_the_best(
    photo_set: tuple[Path, Path], tmp_path: Path
) -> None:
    data = FacePairs.from_folder(*photo_set)
    cfg = _config(*photo_set, tmp_path / "hg", stage="hg", heatmap_foreground=20.0, iterations=20, val_every=10)
    trainer = Trainer(cfg, data, (data.hr, data.landmarks))
    sr_before = trainer.model.conv_in[0].weight.clone()
    hg_before = trainer.model.HG.compress_in.weight.clone()
    losses = [trainer.step()["loss"] for _ in range(10)]
    assert losses[-1] < losses[0]
    assert torch.equal(sr_before, trainer.model.conv_in[0].weight)
    assert not torch.equal(hg_before, trainer.model.HG.compress_in.weight)
    trainer.run()
    best = tmp_path / "hg" / "best.pt"
    assert math.isfinite(trainer.best_score) and trainer.best_score < 0  # minus a recorded validation NME
    assert all(not k.startswith("HG.") for k in torch.load(best, weights_only=True))  # a bare hourglass file
    # stage 2 starts from it (and from whole-network weights)
    whole = tmp_path / "whole.pt"
    torch.save(trainer.model.state_dict(), whole)
    second = Trainer(_config(*photo_set, tmp_path / "dic", init=str(whole), hg_init=str(best)), data, None)
    assert torch.equal(second.model.HG.compress_in.weight, trainer.model.HG.compress_in.weight)
    assert torch.equal(second.model.conv_in[0].weight, sr_before)


def test_config_errors_are_input_errors(photo_set: tuple[Path, Path], tmp_path: Path) -> None:
    with pytest.raises(InputError, match="stage"):
        _config(*photo_set, tmp_path, stage="gan")
    data = FacePairs.from_folder(*photo_set)
    with pytest.raises(InputError, match="val_landmarks"):
        Trainer(_config(*photo_set, tmp_path, stage="hg"), data, (data.hr, None))


@pytest.mark.slow
def test_ray_train_with_two_cpu_workers_makes_the_same_steps(photo_set: tuple[Path, Path], tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    from dicface.models.distributed import ClusterOptions, train_on_ray

    cfg = _config(*photo_set, tmp_path / "ray", iterations=3, val_every=3, log_every=1, flip=False)
    try:
        train_on_ray(cfg, ClusterOptions(workers=2, threads_per_worker=1))
    finally:
        ray.shutdown()
    last = torch.load(tmp_path / "ray" / "last.pt", weights_only=True)
    assert last["iteration"] == 3  # 3 epochs of the 2-photo set, batch 2 split over 2 workers
    local = Trainer(replace(cfg, out_dir=str(tmp_path / "local")), FacePairs.from_folder(*photo_set), None)
    start = {k: v.clone() for k, v in local.model.state_dict().items()}
    local.run()
    # Same steps up to float summation order (Adam's first steps amplify it on near-zero gradients): the two runs'
    # weights differ by a small fraction of how far training moved them.
    moved = sum((v - start[k]).abs().sum() for k, v in local.model.state_dict().items())
    apart = sum((last["model"][k] - v).abs().sum() for k, v in local.model.state_dict().items())
    print(f"moved {moved:.4f}, apart {apart:.4f}")
    assert apart < 0.05 * moved
    assert len((tmp_path / "ray" / "log.csv").read_text().splitlines()) == 4


def test_dicgan_stage_trains_the_discriminator_after_pixel_init(
    photo_set: tuple[Path, Path], tmp_path: Path
) -> None:
    from dicface.models.gan import LightCNN

    features = tmp_path / "lightcnn.pt"
    torch.save(LightCNN().state_dict(), features)  # stands in for face-recognition weights
    data = FacePairs.from_folder(*photo_set)
    cfg = _config(*photo_set, tmp_path / "gan", stage="dicgan", feature_init=str(features), pixel_init=2,
                  iterations=4, val_every=4, log_every=1)
    trainer = Trainer(cfg, data, (data.hr, data.landmarks))
    disc_before = {k: v.clone() for k, v in trainer.disc.state_dict().items()}
    first = trainer.step()
    assert "gan" not in first and all(torch.equal(v, trainer.disc.state_dict()[k]) for k, v in disc_before.items())
    trainer.run()
    assert any(not torch.equal(v, trainer.disc.state_dict()[k]) for k, v in disc_before.items())
    rows = (tmp_path / "gan" / "log.csv").read_text().splitlines()
    assert rows[0].endswith("gan,feature,matching,structure,disc,val_detail") and rows[-1].split(",")[-6] != ""
    resumed = Trainer(cfg, data, None)
    resumed.resume(tmp_path / "gan" / "last.pt")
    assert all(torch.equal(v, resumed.disc.state_dict()[k]) for k, v in trainer.disc.state_dict().items())
    with pytest.raises(InputError, match="feature_init"):
        _config(*photo_set, tmp_path, stage="dicgan")


def test_patch_discriminator_with_feature_matching_trains_and_keeps_the_latest_state(
    photo_set: tuple[Path, Path], tmp_path: Path
) -> None:
    """The natural-detail recipe that needs no downloaded network: hinge loss against a spectral-norm patch
    discriminator and feature matching on its features; validation logs the SR faces' detail, and best.pt is the
    latest validated state (PSNR is not what the stage maximises)."""
    from dicface.models.gan import PatchDiscriminator

    data = FacePairs.from_folder(*photo_set)
    cfg = _config(*photo_set, tmp_path / "gan", stage="dicgan", discriminator="patch", feature_weight=0.0,
                  feature_matching_weight=1.0, structure_weight=1.0, gan_weight=0.02, pixel_init=0, iterations=4,
                  val_every=2, log_every=1)
    trainer = Trainer(cfg, data, (data.hr, data.landmarks))
    assert isinstance(trainer.disc, PatchDiscriminator)
    frozen = {k: v.clone() for k, v in trainer.structure_loss.state_dict().items()}
    assert all(torch.equal(v, trainer.model.HG.state_dict()[k.removeprefix("hg.")]) for k, v in frozen.items())
    logs = trainer.step()
    assert np.isfinite(logs["gan"]) and logs["matching"] > 0 and logs["structure"] > 0 and np.isfinite(logs["disc"])
    trainer.run()
    header, *rows = (tmp_path / "gan" / "log.csv").read_text().splitlines()
    detail = [row.split(",")[header.split(",").index("val_detail")] for row in rows]
    assert [d != "" for d in detail] == [True, False, True]  # iterations 2, 3, 4: 2 and 4 validated
    best = torch.load(tmp_path / "gan" / "best.pt", weights_only=True)
    state = best.get("state_dict", best)
    assert all(torch.equal(v, trainer.model.state_dict()[k]) for k, v in state.items())  # the latest: iteration 4
    # the face-structure loss compares with the starting member's landmark branch, frozen, not the one trained
    assert all(torch.equal(v, trainer.structure_loss.state_dict()[k]) for k, v in frozen.items())
    assert not trainer.structure_loss.hg.training
    with pytest.raises(InputError, match="discriminator: patch, parts or input"):
        _config(*photo_set, tmp_path, stage="dicgan", feature_weight=0.0, feature_matching_weight=1.0)


def test_parts_discriminator_reads_the_true_landmarks_and_warms_up_alone(
    photo_set: tuple[Path, Path], tmp_path: Path
) -> None:
    """``discriminator: parts`` judges the face beside the five component maps of its true landmarks (eight
    channels); for ``disc_warmup`` steps only the discriminator learns, then the generator hears from it."""
    from dicface.models.gan import part_maps

    data = FacePairs.from_folder(*photo_set)
    cfg = _config(*photo_set, tmp_path / "parts", stage="dicgan", discriminator="parts", disc_warmup=1,
                  feature_weight=0.0, feature_matching_weight=1.0, pixel_init=0, iterations=2)
    trainer = Trainer(cfg, data, None)
    assert trainer.disc.hidden[0].weight.shape[1] == 3 + 5
    generator = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    judge = {k: v.clone() for k, v in trainer.disc.state_dict().items()}
    held = trainer.step()
    assert "gan" not in held and np.isfinite(held["disc"])
    assert all(torch.equal(v, trainer.model.state_dict()[k]) for k, v in generator.items())
    assert any(not torch.equal(v, trainer.disc.state_dict()[k]) for k, v in judge.items())
    trained = trainer.step()
    assert np.isfinite(trained["gan"]) and trained["matching"] > 0
    assert any(not torch.equal(v, trainer.model.state_dict()[k]) for k, v in generator.items())
    heat = torch.zeros(1, 68, 32, 32)
    heat[0, 36:42, 10, 9] = 1.0  # the first eye's six points on one pixel
    maps = part_maps(heat, 128)
    assert maps.shape == (1, 5, 128, 128) and maps[0, 0].amax() > 0.9 and maps[0, 1:].amax() < 0.06
    with pytest.raises(InputError, match="disc_warmup"):
        _config(*photo_set, tmp_path, stage="dicgan", feature_weight=0.0, disc_warmup=-1)


def test_input_discriminator_reads_the_enlarged_input_beside_the_face(
    photo_set: tuple[Path, Path], tmp_path: Path
) -> None:
    """``discriminator: input`` judges the face beside the current frame of its LR input enlarged to the face's size
    (six channels): SR and HR faces of a sample are shown the same input."""
    data = FacePairs.from_folder(*photo_set)
    cfg = _config(*photo_set, tmp_path / "input", stage="dicgan", discriminator="input", feature_weight=0.0,
                  feature_matching_weight=1.0, pixel_init=0, iterations=1)
    trainer = Trainer(cfg, data, None)
    assert trainer.disc.hidden[0].weight.shape[1] == 3 + 3
    logs = trainer.step()
    assert np.isfinite(logs["gan"]) and np.isfinite(logs["disc"]) and logs["matching"] > 0
    face, lr = torch.rand(2, 3, 128, 128), torch.rand(2, 9, 32, 32)
    judged = trainer._judged(face, trainer._condition(torch.zeros(2, 68, 32, 32), lr, 128))
    assert judged.shape == (2, 6, 128, 128) and torch.equal(judged[:, :3], face)
    enlarged = F.interpolate(lr[:, :3], size=(128, 128), mode="bicubic", align_corners=False)
    torch.testing.assert_close(judged[:, 3:], enlarged)


def test_lowpass_pixel_loss_leaves_the_finest_detail_to_the_judge(photo_set: tuple[Path, Path], tmp_path: Path) -> None:
    """``pixel_lowpass``: the final step's L1 compares blurred faces, so detail above the input's band (here a
    one-pixel checkerboard) costs nothing there while a shift of brightness costs in full."""
    from dicface.models.gan import gaussian_blur, lowpass_l1

    hr = torch.rand(2, 3, 32, 32)
    flat = torch.full((1, 3, 16, 16), 0.3)
    torch.testing.assert_close(gaussian_blur(flat, 1.5), flat)
    checker = (torch.arange(32).view(1, -1) + torch.arange(32).view(-1, 1)) % 2 * 0.2 - 0.1
    assert lowpass_l1(hr + checker, hr, 1.5) < 0.01 < F.l1_loss(hr + checker, hr)
    assert lowpass_l1(hr + 0.1, hr, 1.5) == pytest.approx(0.1, abs=1e-4)
    srs, heats, gt = [hr + checker] * 2, [torch.zeros(2, 68, 8, 8)], torch.zeros(2, 68, 8, 8)
    full, _, _ = dic_loss(srs, heats, hr, gt, 0.1)
    eased, _, _ = dic_loss(srs, heats, hr, gt, 0.1, last_lowpass=1.5)
    assert full.item() == pytest.approx(0.2, abs=1e-4) and eased.item() == pytest.approx(0.1, abs=0.01)
    data = FacePairs.from_folder(*photo_set)
    cfg = _config(*photo_set, tmp_path / "low", stage="dicgan", discriminator="patch", feature_weight=0.0,
                  pixel_lowpass=1.5, pixel_init=0, iterations=1)
    assert np.isfinite(Trainer(cfg, data, None).step()["l1"])
    with pytest.raises(InputError, match="pixel_lowpass"):
        _config(*photo_set, tmp_path, pixel_lowpass=1.0)


def test_checkpointing_and_bf16_autocast_train_on_cpu(photo_set: tuple[Path, Path], tmp_path: Path) -> None:
    data = FacePairs.from_folder(*photo_set)
    plain = Trainer(_config(*photo_set, tmp_path / "a"), data, None)
    checkpointed = Trainer(_config(*photo_set, tmp_path / "b", gradient_checkpointing=True), data, None)
    assert plain.step()["loss"] == pytest.approx(checkpointed.step()["loss"], rel=1e-6)
    assert all(torch.equal(v, checkpointed.model.state_dict()[k]) for k, v in plain.model.state_dict().items())
    bf16 = Trainer(_config(*photo_set, tmp_path / "c", precision="bf16"), data, None)
    assert np.isfinite(bf16.step()["loss"])
    with pytest.raises(InputError, match="fp16"):
        Trainer(_config(*photo_set, tmp_path / "d", precision="fp16"), data, None)
