"""DIC training: loss, schedule, landmark-branch freezing, validation, checkpoints and exact resume.

Loss (DESIGN §2): sum over steps of L1(SR_t, HR) + heatmap_weight * sum over steps of MSE(heat_t, GT heatmaps).
Optimiser: Adam, lr halved at ``milestones``. Checkpoints (``last.pt``, ``best.pt`` by validation PSNR) hold the
model, optimiser and scheduler states; batches are a function of (seed, iteration), so a resumed run continues
exactly where it stopped.
"""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from models.checkpoints import read_state_dict, save_weights
from models.data import FacePairs, read_landmarks
from models.dic import DIC, DICConfig
from models.errors import CheckpointError, InputError
from models.evaluate import evaluate_faces, list_images, read_rgb
from models.faces import HR_SIZE, denormalise, normalise, resize_bicubic
from models.heatmaps import decode_landmarks


@dataclass(frozen=True)
class TrainConfig:
    """One training run. Paths are strings so the config round-trips through YAML and the checkpoint."""

    train_images: str
    train_landmarks: str
    out_dir: str
    val_images: str | None = None
    val_landmarks: str | None = None
    val_count: int = 200
    cache_dir: str | None = None
    model: DICConfig = field(default_factory=DICConfig)
    batch_size: int = 8
    iterations: int = 150_000
    lr: float = 1e-4
    milestones: tuple[int, ...] = (10_000, 20_000, 40_000, 80_000)
    gamma: float = 0.5
    heatmap_weight: float = 0.1
    freeze_hg_iterations: int = 0
    hg_init: str | None = None  # a pretrained landmark branch (e.g. FB_HG_68_CelebA.pth)
    flip: bool = True
    seed: int = 0
    val_every: int = 1000
    log_every: int = 50

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.iterations < 1 or self.lr <= 0:
            raise InputError(f"batch_size, iterations and lr must be positive (got {self.batch_size}, "
                             f"{self.iterations}, {self.lr})")


def dic_loss(
    srs: list[Tensor], heats: list[Tensor], hr: Tensor, gt_heat: Tensor, heatmap_weight: float
) -> tuple[Tensor, float, float]:
    """Returns (total loss, summed L1 value, summed heatmap MSE value)."""
    pixel = sum(F.l1_loss(sr, hr) for sr in srs)
    align = sum(F.mse_loss(h, gt_heat) for h in heats)
    return pixel + heatmap_weight * align, float(pixel.detach()), float(align.detach())


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


def validate(model: DIC, hr_images: np.ndarray, landmarks: np.ndarray | None, batch: int = 25) -> ValidationResult:
    """DIC protocol (``models.evaluate.evaluate_faces``) on (N, 128, 128, 3) uint8 HR faces; NME of the final
    heatmaps where ``landmarks`` is given ((N, 68, 2), NaN rows for faces without landmarks)."""

    def super_resolve(lrs: list[np.ndarray], _: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        with torch.inference_mode():
            srs, heats = model(normalise(np.stack(lrs)))
        return denormalise(srs[-1]), decode_landmarks(heats[-1]).numpy()

    if landmarks is None:
        truths = [None] * len(hr_images)
    else:
        truths = [None if np.isnan(points).any() else points for points in landmarks]
    was_training = model.training
    model.eval()
    try:
        result = evaluate_faces(zip(hr_images, truths, strict=True), super_resolve, batch)
        rows = {r["method"]: r for r in result.table()}
    finally:
        model.train(was_training)
    dic, bicubic = rows["dic"], rows["bicubic"]
    return ValidationResult(dic["psnr_y"], dic["ssim_y"], bicubic["psnr_y"], bicubic["ssim_y"], dic["nme"])


def load_training_data(cfg: TrainConfig) -> tuple[FacePairs, tuple[np.ndarray, np.ndarray | None] | None]:
    """The training pairs and the validation faces: HR 128-px images (resized if needed) and their landmarks
    ((N, 68, 2) in HR pixels, NaN where the landmark file has no entry), or None without ``val_images``."""
    cache = Path(cfg.cache_dir) if cfg.cache_dir else None
    data = FacePairs.from_folder(cfg.train_images, cfg.train_landmarks, cache)
    if not cfg.val_images:
        return data, None
    paths = list_images([cfg.val_images])[: cfg.val_count]
    images = [read_rgb(p) for p in paths]
    hr = np.stack([im if im.shape[:2] == (HR_SIZE, HR_SIZE) else resize_bicubic(im, HR_SIZE) for im in images])
    if not cfg.val_landmarks:
        return data, (hr, None)
    table = read_landmarks(cfg.val_landmarks)
    points = np.full((len(paths), 68, 2), np.nan, np.float32)
    for i, (path, image) in enumerate(zip(paths, images, strict=True)):
        if path.name in table:
            points[i] = table[path.name] * (HR_SIZE / np.array(image.shape[1::-1], np.float32))
    return data, (hr, points)


class Trainer:
    """Owns the model, optimiser, schedule and the run folder (``last.pt``, ``best.pt``, ``log.csv``)."""

    def __init__(self, cfg: TrainConfig, data: FacePairs, val: tuple[np.ndarray, np.ndarray | None] | None) -> None:
        torch.manual_seed(cfg.seed)
        self.cfg = cfg
        self.data = data
        self.val = val
        self.out = Path(cfg.out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.model = DIC(cfg.model).to(memory_format=torch.channels_last)
        if cfg.hg_init:
            hg_state = read_state_dict(cfg.hg_init)
            self.model.HG.load_state_dict({k.removeprefix("HG."): v for k, v in hg_state.items()}, strict=True)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(self.optimizer, list(cfg.milestones), cfg.gamma)
        self.iteration = 0
        self.best_psnr = -math.inf

    def state(self) -> dict[str, object]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "iteration": self.iteration,
            "best_psnr": self.best_psnr,
            "model_config": self.cfg.model.to_dict(),
        }

    def resume(self, path: Path) -> None:
        """Continue from a ``last.pt`` written by this trainer (same model configuration)."""
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
            if ckpt["model_config"] != self.cfg.model.to_dict():
                raise CheckpointError(f"{path}: trained with {ckpt['model_config']}, not {self.cfg.model.to_dict()}")
            self.model.load_state_dict(ckpt["model"], strict=True)
            self.optimizer.load_state_dict(ckpt["optimizer"])
            self.scheduler.load_state_dict(ckpt["scheduler"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise CheckpointError(f"{path}: cannot resume from it ({type(exc).__name__}: {exc})") from exc
        self.iteration = int(ckpt["iteration"])
        self.best_psnr = float(ckpt["best_psnr"])

    def step(self) -> dict[str, float]:
        """One optimisation step on the batch of the current iteration."""
        cfg = self.cfg
        set_hg_trainable(self.model, self.iteration >= cfg.freeze_hg_iterations)
        batch = self.data.batch(cfg.seed, self.iteration, cfg.batch_size, cfg.flip)
        lr = batch["lr"].contiguous(memory_format=torch.channels_last)
        srs, heats = self.model(lr)
        loss, pixel, align = dic_loss(srs, heats, batch["hr"], batch["heatmaps"], cfg.heatmap_weight)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        self.iteration += 1
        return {"loss": float(loss.detach()), "l1": pixel, "heatmap_mse": align}

    def run(self) -> None:
        cfg = self.cfg
        log_path = self.out / "log.csv"
        new_log = not log_path.exists()
        with open(log_path, "a", newline="") as log, tqdm(
            total=cfg.iterations, initial=self.iteration, desc="train", unit="it"
        ) as bar:
            writer = csv.writer(log)
            if new_log:
                writer.writerow(["iteration", "time", "lr", "loss", "l1", "heatmap_mse",
                                 "val_psnr", "val_ssim", "bicubic_psnr", "bicubic_ssim", "val_nme"])
            window: list[dict[str, float]] = []
            while self.iteration < cfg.iterations:
                window.append(self.step())
                bar.update(1)
                validate_now = self.val is not None and (
                    self.iteration % cfg.val_every == 0 or self.iteration == cfg.iterations
                )
                if self.iteration % cfg.log_every == 0 or validate_now:
                    mean = {k: float(np.mean([w[k] for w in window])) for k in window[0]}
                    window.clear()
                    row: list[object] = [self.iteration, round(time.time()), self.scheduler.get_last_lr()[0],
                                         mean["loss"], mean["l1"], mean["heatmap_mse"]]
                    if validate_now:
                        v = validate(self.model, *self.val)
                        row += [v.psnr, v.ssim, v.bicubic_psnr, v.bicubic_ssim, v.nme]
                        bar.set_postfix(psnr=f"{v.psnr:.2f}", bicubic=f"{v.bicubic_psnr:.2f}")
                        if v.psnr > self.best_psnr:
                            self.best_psnr = v.psnr
                            save_weights(self.model.state_dict(), self.out / "best.pt")
                        save_weights(self.state(), self.out / "last.pt")
                    writer.writerow(row)
                    log.flush()
            save_weights(self.state(), self.out / "last.pt")
            (self.out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
