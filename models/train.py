"""DIC training: loss, schedule, landmark-branch freezing, validation, checkpoints and exact resume.

Stages:
- ``dic`` (DESIGN §2): sum over steps of L1(SR_t, HR) + heatmap_weight * sum over steps of MSE(heat_t, GT heatmaps);
  ``best.pt`` is the checkpoint with the best validation PSNR.
- ``hg``: pre-trains the landmark branch alone on the HR crops (sum over steps of the heatmap MSE), as the released
  DIC starts from a pretrained hourglass; ``best.pt`` has the lowest validation NME and is what ``hg_init`` takes.
- ``dicgan``: the ``dic`` loss, plus after ``pixel_init`` iterations the natural-detail terms on the final SR image
  (``models.gan``): DICGAN's vanilla GAN loss against a LightCNN discriminator and a LightCNN feature loss, or the
  hinge loss against a patch discriminator and feature matching on its features (``discriminator: patch``, or
  ``parts``: the patch discriminator reading the true landmarks' five component maps beside the face, ``input``:
  the LR input enlarged beside it); the
  discriminator is trained ``disc_repeat`` times per step, alone for its first ``disc_warmup`` steps; optionally a
  face-structure loss on the features of the starting member's frozen landmark hourglass (``structure_weight``)
  and the final step's L1 on blurred faces only (``pixel_lowpass``, the blur's sigma).
  Validation also measures the SR faces' fine detail against the HR faces' (``models.metrics.fine_detail``); as
  PSNR is not what this stage maximises, ``best.pt`` is the latest validated state.
Optimiser: Adam, lr multiplied by ``gamma`` at ``milestones``. ``last.pt`` holds the model, optimiser and scheduler
states (and the discriminator's); batches are a function of (seed, iteration), so a resumed run continues exactly
where it stopped. With ``world`` > 1 (``models.distributed``, Ray Train) every worker computes its share of each
batch and DDP averages the gradients; rank 0 validates, logs and writes the checkpoints.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dicface.configs.model import DICConfig, TrainConfig
from dicface.models.checkpoints import load_from_member, load_landmark_branch, load_part, save_weights
from dicface.models.data import FacePairs, read_landmarks
from dicface.models.dic import DIC
from dicface.models.errors import CheckpointError, InputError
from dicface.models.evaluate import evaluate_faces
from dicface.models.faces import denormalise, normalise, normalise_frames, resize_bicubic, still_frames
from dicface.models.gan import (
    FeatureLoss,
    LightCNN,
    PatchDiscriminator,
    StructureLoss,
    discriminator_loss,
    feature_matching_loss,
    generator_gan_loss,
    hinge_discriminator_loss,
    hinge_generator_loss,
    lowpass_l1,
    part_maps,
)
from dicface.models.heatmaps import decode_landmarks
from dicface.models.imageio import list_images, read_rgb
from dicface.models.inference import autocast, resolve_device
from dicface.models.metrics import landmark_nme
from dicface.models.progress import BarFactory, no_bars

GAN_COLUMNS = ("gan", "feature", "matching", "structure", "disc", "val_detail")  # log columns of stage dicgan


def heatmap_loss(heats: list[Tensor], gt_heat: Tensor, foreground: float = 0.0) -> Tensor:
    """Summed over steps: the mean squared heatmap error, each pixel weighted by (1 + foreground * GT).

    With ``foreground`` 0 this is DIC's MSE. A 32x32 map holds ~3 pixels of peak among 1,024: an untrained
    hourglass settles on all-zero maps first, and up-weighting the peaks gets it out of that plateau sooner.
    """
    weight = 1 + foreground * gt_heat
    return sum((weight * (h - gt_heat).square()).mean() for h in heats)


def dic_loss(
    srs: list[Tensor], heats: list[Tensor], hr: Tensor, gt_heat: Tensor, heatmap_weight: float,
    foreground: float = 0.0, last_lowpass: float = 0.0,
) -> tuple[Tensor, float, float]:
    """Returns (total loss, summed L1 value, summed heatmap loss value). ``last_lowpass`` > 0: the final step's
    L1 is taken between the faces blurred by that sigma (``models.gan.lowpass_l1``)."""
    last = lowpass_l1(srs[-1], hr, last_lowpass) if last_lowpass > 0 else F.l1_loss(srs[-1], hr)
    pixel = sum((F.l1_loss(sr, hr) for sr in srs[:-1]), last)
    align = heatmap_loss(heats, gt_heat, foreground)
    return pixel + heatmap_weight * align, float(pixel.detach()), float(align.detach())


class RecurrentLandmarkBranch(nn.Module):
    """The landmark branch run ``steps`` times on one image, as one module (so DDP sees one forward pass)."""

    def __init__(self, hg: nn.Module, steps: int) -> None:
        super().__init__()
        self.hg, self.steps = hg, steps

    def forward(self, image: Tensor) -> list[Tensor]:
        return run_landmark_branch(self.hg, image, self.steps)


def run_landmark_branch(hg: nn.Module, image: Tensor, steps: int) -> list[Tensor]:
    """The recurrent landmark branch alone, run ``steps`` times on one image (B, 3, 128, 128) (HG pre-training).
    Returns the heatmaps of every step, each (B, K, 32, 32)."""
    heats, hidden = [], None
    for _ in range(steps):
        heat, hidden = hg(image, hidden)
        heats.append(heat)
    return heats


def set_hg_trainable(model: DIC, trainable: bool) -> None:
    for p in model.HG.parameters():
        p.requires_grad_(trainable)


@dataclass
class ValidationResult:
    psnr: float
    ssim: float
    bicubic_psnr: float
    bicubic_ssim: float
    nme: float | None
    detail: float | None = None  # the SR faces' fine detail relative to the HR faces'


def validate(model: DIC, hr_images: np.ndarray, landmarks: np.ndarray | None, batch: int = 25) -> ValidationResult:
    """DIC protocol (``models.evaluate.evaluate_faces``) on (N, 128, 128, 3) uint8 HR faces; NME of the final
    heatmaps where ``landmarks`` is given ((N, 68, 2), NaN rows for faces without landmarks). A multi-frame
    member gets each LR face as every one of its frames (a still face, as a track's first frame)."""

    device = next(model.parameters()).device

    def super_resolve(lrs: list[np.ndarray], _: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        with torch.inference_mode():
            srs, heats = model(normalise_frames(still_frames(np.stack(lrs), model.cfg.frames)).to(device))
        return denormalise(srs[-1].float().cpu()), decode_landmarks(heats[-1].float().cpu()).numpy()

    if landmarks is None:
        truths = [None] * len(hr_images)
    else:
        truths = [None if np.isnan(points).any() else points for points in landmarks]
    was_training = model.training
    model.eval()
    try:
        result = evaluate_faces(zip(hr_images, truths, strict=True), super_resolve, batch,
                                lr_size=model.cfg.input_size, hr_size=model.cfg.output_size)
        rows = {r["method"]: r for r in result.table()}
    finally:
        model.train(was_training)
    dic, bicubic = rows["dic"], rows["bicubic"]
    return ValidationResult(dic["psnr_y"], dic["ssim_y"], bicubic["psnr_y"], bicubic["ssim_y"], dic["nme"],
                            dic["detail"])


def validate_landmarks(model: DIC, hr_images: np.ndarray, landmarks: np.ndarray, batch: int = 25) -> float:
    """Mean NME of the landmark branch run on the HR faces ((N, 128, 128, 3) uint8) against ``landmarks``
    ((N, 68, 2) HR pixels, NaN rows skipped)."""
    keep = ~np.isnan(landmarks).any(axis=(1, 2))
    images, truths = hr_images[keep], landmarks[keep]
    errors = []
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for i in range(0, len(images), batch):
                image = normalise(images[i : i + batch]).to(next(model.parameters()).device)
                heats = run_landmark_branch(model.HG, image, model.cfg.num_steps)
                found = decode_landmarks(heats[-1].float().cpu()).numpy()
                errors += [landmark_nme(p, t) for p, t in zip(found, truths[i : i + batch], strict=True)]
    finally:
        model.train(was_training)
    return float(np.mean(errors))


def _unwrap(module: nn.Module) -> nn.Module:
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


def load_lightcnn_features(path: str) -> LightCNN:
    """A LightCNN whose ``features`` come from ``path`` (keys ``features.*``; a classifier, if present, is
    ignored), strictly checked."""
    network = LightCNN()
    load_part(network.features, path, "features.")
    return network


def load_training_data(cfg: TrainConfig, bars: BarFactory = no_bars
                       ) -> tuple[FacePairs, tuple[np.ndarray, np.ndarray | None] | None]:
    """The training pairs and the validation faces: HR images of the member's output size (resized if needed) and
    their landmarks ((N, 68, 2) in HR pixels, NaN where the landmark file has no entry), or None without
    ``val_images``."""
    cache = Path(cfg.cache_dir) if cfg.cache_dir else None
    size = cfg.model.output_size
    data = FacePairs.from_folder(cfg.train_images, cfg.train_landmarks, cache, bars, size)
    if not cfg.val_images:
        return data, None
    paths = list_images([cfg.val_images])[: cfg.val_count]
    images = [read_rgb(p) for p in paths]
    hr = np.stack([im if im.shape[:2] == (size, size) else resize_bicubic(im, size) for im in images])
    if not cfg.val_landmarks:
        return data, (hr, None)
    table = read_landmarks(cfg.val_landmarks)
    points = np.full((len(paths), 68, 2), np.nan, np.float32)
    for i, (path, image) in enumerate(zip(paths, images, strict=True)):
        if path.name in table:
            points[i] = table[path.name] * (size / np.array(image.shape[1::-1], np.float32))
    return data, (hr, points)


class Trainer:
    """Owns the model, optimiser, schedule and the run folder (``last.pt``, ``best.pt``, ``log.csv``).

    ``rank``/``world``: this worker's place in a data-parallel group (``torch.distributed`` initialised by the
    caller); each worker computes ``batch_size / world`` samples of every batch.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        data: FacePairs,
        val: tuple[np.ndarray, np.ndarray | None] | None,
        rank: int = 0,
        world: int = 1,
        device: torch.device | None = None,
    ) -> None:
        if cfg.stage == "hg" and val is not None and val[1] is None:
            raise InputError("stage 'hg' validates landmarks: set val_landmarks, or leave out val_images")
        if cfg.batch_size % world:
            raise InputError(f"batch_size {cfg.batch_size} does not split over {world} workers")
        torch.manual_seed(cfg.seed)
        self.cfg, self.data, self.val, self.rank, self.world = cfg, data, val, rank, world
        self.device = device or resolve_device(cfg.device)
        if cfg.precision == "fp16" and self.device.type != "cuda":
            raise InputError("precision fp16 needs a CUDA device (use bf16 or fp32 on the CPU)")
        self.out = Path(cfg.out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.model = DIC(cfg.model).to(self.device, memory_format=torch.channels_last)
        self.model.gradient_checkpointing = cfg.gradient_checkpointing
        if cfg.init:
            load_from_member(self.model, cfg.init)
        if cfg.hg_init:
            load_landmark_branch(self.model, cfg.hg_init)
        trained = self.model.HG if cfg.stage == "hg" else self.model
        net = RecurrentLandmarkBranch(self.model.HG, cfg.model.num_steps) if cfg.stage == "hg" else self.model
        self.net = self._data_parallel(net, find_unused=cfg.freeze_hg_iterations > 0)
        self.optimizer = torch.optim.Adam(trained.parameters(), lr=cfg.lr)
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(self.optimizer, list(cfg.milestones), cfg.gamma)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=cfg.precision == "fp16")
        self.disc = self.disc_optimizer = self.feature_loss = self.structure_loss = None
        if cfg.stage == "dicgan":
            disc = {"lightcnn": LightCNN, "patch": PatchDiscriminator,
                    "parts": lambda: PatchDiscriminator(in_channels=3 + 5),
                    "input": lambda: PatchDiscriminator(in_channels=3 + 3)}[cfg.discriminator]()
            self.disc = self._data_parallel(disc.to(self.device), find_unused=False)
            self.disc_optimizer = torch.optim.Adam(self.disc.parameters(), lr=cfg.disc_lr)
            if cfg.feature_weight > 0:
                self.feature_loss = FeatureLoss(load_lightcnn_features(cfg.feature_init)).to(self.device)
            if cfg.structure_weight > 0:
                self.structure_loss = StructureLoss(self.model.HG).to(self.device)
        self.iteration = 0
        self.best_score = -math.inf  # validation PSNR (stages dic, dicgan) or -NME (stage hg): higher is better

    def _data_parallel(self, module: nn.Module, find_unused: bool) -> nn.Module:
        if self.world == 1:
            return module
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(module, device_ids=ids, find_unused_parameters=find_unused)

    def _autocast(self) -> contextlib.AbstractContextManager[None]:
        return autocast(self.device, self.cfg.precision)

    def state(self) -> dict[str, object]:
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "iteration": self.iteration,
            "best_score": self.best_score,
            "model_config": self.cfg.model.to_dict(),
        }
        if self.disc is not None:
            state["discriminator"] = _unwrap(self.disc).state_dict()
            state["disc_optimizer"] = self.disc_optimizer.state_dict()
        return state

    def resume(self, path: Path) -> None:
        """Continue from a ``last.pt`` written by this trainer (same model configuration and stage)."""
        try:
            ckpt = torch.load(path, map_location=self.device, weights_only=True)
            trained = {**DICConfig().to_dict(), **ckpt["model_config"]}  # fields added since take their defaults
            if trained != self.cfg.model.to_dict():
                raise CheckpointError(f"{path}: trained with {trained}, not {self.cfg.model.to_dict()}")
            self.model.load_state_dict(ckpt["model"], strict=True)
            self.optimizer.load_state_dict(ckpt["optimizer"])
            self.scheduler.load_state_dict(ckpt["scheduler"])
            if self.disc is not None:
                _unwrap(self.disc).load_state_dict(ckpt["discriminator"], strict=True)
                self.disc_optimizer.load_state_dict(ckpt["disc_optimizer"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise CheckpointError(f"{path}: cannot resume from it ({type(exc).__name__}: {exc})") from exc
        self.iteration = int(ckpt["iteration"])
        self.best_score = float(ckpt["best_score"])

    def step(self) -> dict[str, float]:
        """One optimisation step on (this worker's share of) the batch of the current iteration."""
        cfg = self.cfg
        batch = self.data.batch(cfg.seed, self.iteration, cfg.batch_size, cfg.flip, shard=(self.rank, self.world),
                                lr_size=cfg.model.input_size, degradation=cfg.degradation, frames=cfg.model.frames)
        batch = {k: v.to(self.device) for k, v in batch.items()}
        hr = batch["hr"].contiguous(memory_format=torch.channels_last)
        adversarial = self.disc is not None and self.iteration >= cfg.pixel_init
        holding = adversarial and self.iteration < cfg.pixel_init + cfg.disc_warmup  # only the judge learns
        condition = self._condition(batch["heatmaps"], batch["lr"], hr.shape[-1]) if adversarial else None
        with self._autocast(), torch.no_grad() if holding else contextlib.nullcontext():
            if cfg.stage == "hg":
                loss = heatmap_loss(self.net(hr), batch["heatmaps"], cfg.heatmap_foreground)
                logs = {"l1": 0.0, "heatmap_mse": float(loss.detach())}
            else:
                set_hg_trainable(self.model, self.iteration >= cfg.freeze_hg_iterations)
                srs, heats = self.net(batch["lr"].contiguous(memory_format=torch.channels_last))
                loss, pixel, align = dic_loss(srs, heats, batch["hr"], batch["heatmaps"], cfg.heatmap_weight,
                                              cfg.heatmap_foreground, cfg.pixel_lowpass if adversarial else 0.0)
                logs = {"l1": pixel, "heatmap_mse": align}
                if adversarial and not holding:
                    loss = loss + self._adversarial_terms(srs[-1], hr, condition, logs)
        if not holding:
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.scheduler.step()
        if adversarial:
            logs["disc"] = self._train_discriminator(srs[-1].detach(), hr, condition)
        self.iteration += 1
        return {"loss": float(loss.detach()), **logs}

    def _condition(self, heatmaps: Tensor, lr: Tensor, size: int) -> Tensor | None:
        """What the discriminator reads beside a sample's SR and HR faces alike (made once a step): with
        ``discriminator: parts`` the five component maps of the true landmarks' heatmaps (B, 68, H/4, H/4), with
        ``input`` the current frame of the LR input (B, 3 * frames, S, S) enlarged bicubically; (B, 5 or 3, size,
        size). None for the judges of the face alone."""
        if self.cfg.discriminator == "parts":
            return part_maps(heatmaps, size)
        if self.cfg.discriminator == "input":
            return F.interpolate(lr[:, :3], size=(size, size), mode="bicubic", align_corners=False)
        return None

    @staticmethod
    def _judged(image: Tensor, condition: Tensor | None) -> Tensor:
        """What the discriminator reads: the face (B, 3, H, H), with the ``condition`` beside it where there is one."""
        return image if condition is None else torch.cat([image, condition.to(image.dtype)], dim=1)

    def _adversarial_terms(self, sr: Tensor, hr: Tensor, condition: Tensor | None, logs: dict[str, float]
                           ) -> Tensor:
        """The generator's natural-detail terms on the final SR image (discriminator frozen): GAN loss, LightCNN
        feature loss, feature matching, face structure."""
        disc = _unwrap(self.disc)
        disc.requires_grad_(False)  # no gradient sync needed: the discriminator is frozen here
        fake, real = self._judged(sr, condition), self._judged(hr, condition)
        hinge = self.cfg.discriminator != "lightcnn"
        gan = hinge_generator_loss(disc(fake)) if hinge else generator_gan_loss(disc(fake))
        logs["gan"] = float(gan.detach())
        terms = self.cfg.gan_weight * gan
        if self.feature_loss is not None:
            feature = self.feature_loss(sr, hr)
            logs["feature"] = float(feature.detach())
            terms = terms + self.cfg.feature_weight * feature
        if self.cfg.feature_matching_weight > 0:
            matching = feature_matching_loss(disc, fake, real)
            logs["matching"] = float(matching.detach())
            terms = terms + self.cfg.feature_matching_weight * matching
        if self.structure_loss is not None:
            structure = self.structure_loss(sr, hr)
            logs["structure"] = float(structure.detach())
            terms = terms + self.cfg.structure_weight * structure
        return terms

    def _train_discriminator(self, sr: Tensor, hr: Tensor, condition: Tensor | None) -> float:
        _unwrap(self.disc).requires_grad_(True)
        judge = discriminator_loss if self.cfg.discriminator == "lightcnn" else hinge_discriminator_loss
        fake, real = self._judged(sr, condition), self._judged(hr, condition)
        for _ in range(self.cfg.disc_repeat):
            with self._autocast():
                loss = judge(self.disc(real), self.disc(fake))
            self.disc_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.disc_optimizer.step()
        return float(loss.detach())

    def _validate(self) -> tuple[list[object], float, dict[str, str]]:
        """Validation columns for the log, the score to maximise and the progress-bar summary."""
        hr, landmarks = self.val
        if self.cfg.stage == "hg":
            nme = validate_landmarks(self.model, hr, landmarks)
            return ["", "", "", "", nme], -nme, {"nme": f"{nme:.4f}"}
        v = validate(self.model, hr, landmarks)
        summary = {"psnr": f"{v.psnr:.2f}", "bicubic": f"{v.bicubic_psnr:.2f}"}
        if self.cfg.stage == "dicgan":  # the latest state is the best: PSNR is not what this stage maximises
            summary["detail"] = f"{v.detail:.2f}"
            return [v.psnr, v.ssim, v.bicubic_psnr, v.bicubic_ssim, v.nme], self.iteration, summary
        return [v.psnr, v.ssim, v.bicubic_psnr, v.bicubic_ssim, v.nme], v.psnr, summary

    def _save_best(self) -> None:
        """``best.pt``: the whole network (stage dic) or the bare landmark branch (stage hg, for ``hg_init``)."""
        state = self.model.HG.state_dict() if self.cfg.stage == "hg" else self.model.state_dict()
        save_weights(state, self.out / "best.pt")

    def run(self, bars: BarFactory = no_bars) -> None:
        """Train to ``cfg.iterations``. Rank 0 logs, validates every ``val_every``, writes the checkpoints and
        shows progress on a bar from ``bars``."""
        cfg = self.cfg
        if self.rank != 0:
            while self.iteration < cfg.iterations:
                self.step()
            return
        log_path = self.out / "log.csv"
        new_log = not log_path.exists()
        with open(log_path, "a", newline="") as log, bars(
            total=cfg.iterations, initial=self.iteration, desc="train", unit="it"
        ) as bar:
            writer = csv.writer(log)
            if new_log:
                writer.writerow(["iteration", "time", "lr", "loss", "l1", "heatmap_mse", "val_psnr", "val_ssim",
                                 "bicubic_psnr", "bicubic_ssim", "val_nme", *GAN_COLUMNS])
            window: list[dict[str, float]] = []
            while self.iteration < cfg.iterations:
                window.append(self.step())
                bar.update(1)
                validate_now = self.val is not None and (
                    self.iteration % cfg.val_every == 0 or self.iteration == cfg.iterations
                )
                if self.iteration % cfg.log_every == 0 or validate_now:
                    mean = {k: float(np.mean([w[k] for w in window if k in w])) for k in {k for w in window for k in w}}
                    window.clear()
                    row: list[object] = [self.iteration, round(time.time()), self.scheduler.get_last_lr()[0],
                                         mean["loss"], mean["l1"], mean["heatmap_mse"]]
                    if validate_now:
                        columns, score, summary = self._validate()
                        row += columns
                        mean["val_detail"] = summary.get("detail", "")
                        bar.set_postfix(summary)
                        if score > self.best_score:
                            self.best_score = score
                            self._save_best()
                        save_weights(self.state(), self.out / "last.pt")
                    else:
                        row += [""] * 5
                    if self.disc is not None:
                        row += [mean.get(k, "") for k in GAN_COLUMNS]
                    writer.writerow(row)
                    log.flush()
            save_weights(self.state(), self.out / "last.pt")
            (self.out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
