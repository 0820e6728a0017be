"""DIC's evaluation protocol on a folder of HR faces (degraded as in training) or of LR/HR pairs: super-resolve,
score on Y against bicubic."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from dicface.models.errors import InputError
from dicface.models.faces import HR_SIZE, LR_SIZE, hr_and_lr, resize_bicubic
from dicface.models.identity import FaceIdentity
from dicface.models.metrics import DEFAULT_CROP, fine_detail, gmsd, landmark_nme, psnr_y, ssim_y

# super_resolve(lr faces (B of (16, 16, 3) uint8), seed landmarks (B, 68, 2) in HR pixels or None)
#   -> (SR faces (B, 128, 128, 3) uint8, landmarks decoded from the final heatmaps (B, 68, 2) in HR pixels)
SuperResolve = Callable[[list[np.ndarray], np.ndarray | None], tuple[np.ndarray, np.ndarray]]


@dataclass
class MethodScores:
    psnr: list[float] = field(default_factory=list)
    ssim: list[float] = field(default_factory=list)
    nme: list[float] = field(default_factory=list)
    detail: list[float] = field(default_factory=list)  # the output's fine detail
    truth_detail: list[float] = field(default_factory=list)  # the HR face's
    gmsd: list[float] = field(default_factory=list)
    identity: list[float] = field(default_factory=list)  # dlib identity distance to the HR face

    def add(self, hr: np.ndarray, out: np.ndarray, crop: int, identity: FaceIdentity | None = None,
            truth: np.ndarray | None = None) -> None:
        """One face: ``out`` against ``hr``; its identity distance where ``identity`` and the HR face's landmarks
        ``truth`` are given."""
        self.psnr.append(psnr_y(out, hr, crop))
        self.ssim.append(ssim_y(out, hr, crop))
        self.gmsd.append(gmsd(out, hr))
        if hr.shape == out.shape:
            self.detail.append(fine_detail(out))
            self.truth_detail.append(fine_detail(hr))
        if identity is not None and truth is not None:
            self.identity.append(identity.distance(out, hr, truth))

    def row(self, name: str) -> dict[str, float | str | int | None]:
        finite = [p for p in self.psnr if math.isfinite(p)]
        truth = float(np.sum(self.truth_detail))
        return {
            "method": name,
            "psnr_y": round(float(np.mean(finite)), 4) if finite else math.inf,
            "ssim_y": round(float(np.mean(self.ssim)), 4),
            "nme": round(float(np.mean(self.nme)), 5) if self.nme else None,
            # fine detail (``models.metrics.fine_detail``) over the faces, relative to the true faces' (1: as much)
            "detail": round(float(np.sum(self.detail)) / truth, 3) if truth > 0 else None,
            "gmsd": round(float(np.mean(self.gmsd)), 4),  # lower: closer to the truth as a viewer judges
            "identity": round(float(np.mean(self.identity)), 4) if self.identity else None,  # lower: same person
            "faces": len(self.psnr),
        }


@dataclass
class EvalResult:
    count: int
    crop: int
    scores: dict[str, MethodScores]

    def table(self) -> list[dict[str, float | str | int | None]]:
        return [s.row(name) for name, s in self.scores.items()]

    def markdown(self) -> str:
        lines = ["| method | PSNR-Y (dB) | SSIM-Y | NME | detail | GMSD | identity | faces |",
                 "|---|---|---|---|---|---|---|---|"]

        def cell(value: object, digits: int) -> str:
            return "–" if value is None else f"{value:.{digits}f}"

        for r in self.table():
            lines.append(f"| {r['method']} | {r['psnr_y']:.2f} | {r['ssim_y']:.4f} | {cell(r['nme'], 4)} | "
                         f"{cell(r['detail'], 2)} | {cell(r['gmsd'], 4)} | {cell(r['identity'], 3)} | {r['faces']} |")
        return "\n".join(lines)


def evaluate_faces(
    faces: Iterable[tuple[np.ndarray, np.ndarray | None] | tuple[np.ndarray, np.ndarray | None, np.ndarray]],
    super_resolve: SuperResolve,
    batch: int = 16,
    crop: int = DEFAULT_CROP,
    seeded: bool = False,
    lr_size: int = LR_SIZE,
    compress: Callable[[np.ndarray], np.ndarray] | None = None,
    identity: FaceIdentity | None = None,
    hr_size: int = HR_SIZE,
) -> EvalResult:
    """Score ``super_resolve`` against bicubic on HR faces, in DIC's protocol.

    ``faces`` yields (HR image, its 68 landmarks in that image's pixels or None[, its LR image]). Each HR face is
    resized to ``hr_size`` (128; PIL bicubic) if needed; its LR input is the given LR image (resized to ``lr_size``
    if needed: LR/HR pairs) or made by PIL bicubic HR -> ``lr_size`` (the member's input); the
    bicubic baseline is PIL bicubic from that LR to ``hr_size``. ``compress`` (e.g. a JPEG or H.264 round trip of
    ``models.degrade``) is applied to every LR input first, as a compressed video degrades its faces; both methods
    start from that LR.
    Faces with landmarks also score the NME of DIC's decoded landmarks and, with ``seeded``, a second DIC run whose
    landmark branch is seeded with those landmarks (``dic+seed``), and with ``identity`` each method's identity
    distance to the HR face (``models.identity``). Every face scores fine detail and GMSD (``models.metrics``).
    """
    scores = {"bicubic": MethodScores(), "dic": MethodScores()}
    if seeded:
        scores["dic+seed"] = MethodScores()
    pending: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]] = []

    def run(name: str, seeds: np.ndarray | None) -> None:
        srs, points = super_resolve([lr for _, lr, _ in pending], seeds)
        for (hr, _, truth), sr, pred in zip(pending, srs, points, strict=True):
            scores[name].add(hr, sr, crop, identity, truth)
            if truth is not None:
                scores[name].nme.append(landmark_nme(pred, truth))

    def flush() -> None:
        for hr, lr, truth in pending:
            scores["bicubic"].add(hr, resize_bicubic(lr, hr_size), crop, identity, truth)
        run("dic", None)
        if seeded:
            known = [t for _, _, t in pending if t is not None]
            if len(known) == len(pending):
                run("dic+seed", np.stack(known))
            else:
                raise InputError("--seed needs landmarks for every evaluated face")
        pending.clear()

    count = 0
    for image, landmarks, *given in faces:
        hr, lr = hr_and_lr(image, lr_size, hr_size)
        if given:
            lr = given[0] if given[0].shape[:2] == (lr_size, lr_size) else resize_bicubic(given[0], lr_size)
        if compress is not None:
            lr = compress(lr)
        truth = None
        if landmarks is not None:
            truth = np.asarray(landmarks, np.float32) * (hr_size / np.array(image.shape[1::-1], np.float32))
        pending.append((hr, lr, truth))
        count += 1
        if len(pending) == batch:
            flush()
    if pending:
        flush()
    if count == 0:
        raise InputError("no faces to evaluate")
    return EvalResult(count=count, crop=crop, scores=scores)
