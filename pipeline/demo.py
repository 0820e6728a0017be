"""The bundled example: real face photos that ship with scikit-image, super-resolved with a comparison sheet, and
a generated clip of small moving faces run through the whole video path (``dicface enhance`` with ``--upscale``)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dicface.models.faces import ASTRONAUT_FACE_BOX, HR_SIZE, lfw_faces, lr_from_face, resize_bicubic
from dicface.models.imageio import write_png
from dicface.models.inference import FaceSuperResolver
from dicface.models.progress import BarFactory, no_bars

if TYPE_CHECKING:
    from dicface.configs.schema import RunConfig

LFW_FACES = 6  # LFW faces among the examples


def example_faces() -> list[tuple[str, np.ndarray]]:
    """Named (H, W, 3) uint8 RGB face crops: the astronaut (130 px) and tiny 25-px LFW faces."""
    from skimage import data

    x1, y1, x2, y2 = ASTRONAUT_FACE_BOX
    faces = [("astronaut", np.ascontiguousarray(data.astronaut()[y1:y2, x1:x2]))]
    return faces + [(f"lfw_{i:02d}", face) for i, face in enumerate(lfw_faces(LFW_FACES))]


def comparison_sheet(rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> np.ndarray:
    """One row per face: 16-px input (nearest, enlarged) | bicubic | DIC, each 128 px.

    Shape: list of ((16, 16, 3), (128, 128, 3), (128, 128, 3)) uint8 -> (128 * rows, 3 * 128 + 8, 3) uint8
    """
    gap = np.full((HR_SIZE, 4, 3), 255, np.uint8)
    lines = []
    for lr, bicubic, sr in rows:
        nearest = np.repeat(np.repeat(lr, HR_SIZE // lr.shape[0], axis=0), HR_SIZE // lr.shape[1], axis=1)
        lines.append(np.concatenate([nearest, gap, bicubic, gap, sr], axis=1))
    return np.concatenate(lines, axis=0)


def run_demo(out_dir: Path, resolver: FaceSuperResolver) -> list[Path]:
    """Write the example inputs, their DIC outputs and ``comparison.png``; returns the written paths."""
    faces = example_faces()
    sr, _ = resolver.faces([face for _, face in faces])
    written, rows = [], []
    for (name, face), out in zip(faces, sr, strict=True):
        lr = lr_from_face(face)
        rows.append((lr, resize_bicubic(lr, HR_SIZE), out))
        for suffix, image in (("input", face), ("dic", out)):
            path = out_dir / f"{name}_{suffix}.png"
            write_png(image, path)
            written.append(path)
    sheet = out_dir / "comparison.png"
    write_png(comparison_sheet(rows), sheet)
    return [*written, sheet]


FIDELITY_CRF = 26  # the natural-detail comparison codes each LR face as H.264 at this crf, as video delivers it


def fidelity_sheet(faces: list[np.ndarray], members: list[tuple[FaceSuperResolver, FaceSuperResolver]],
                   crf: int = FIDELITY_CRF) -> np.ndarray:
    """One row per face and member pair (faithful, natural; one per scale): the face reduced to the members' input
    (PIL bicubic) and coded as an H.264 intra frame at ``crf``, then bicubic | faithful | natural | the true face.

    Shape: faces of (H, W, 3) uint8 -> (128 * rows, 4 * 128 + 12, 3) uint8
    """
    from dicface.models.degrade import h264
    from dicface.models.faces import hr_and_lr

    gap = np.full((HR_SIZE, 4, 3), 255, np.uint8)
    lines = []
    for faithful, natural in members:
        for face in faces:
            hr, lr = hr_and_lr(face, faithful.model.cfg.input_size)
            lr = h264(lr, crf=crf)
            columns = [resize_bicubic(lr, HR_SIZE), faithful.faces([lr])[0][0], natural.faces([lr])[0][0], hr]
            lines.append(np.concatenate([part for c in columns for part in (c, gap)][:-1], axis=1))
    return np.concatenate(lines, axis=0)


def natural_pairs(cfg: RunConfig) -> list[tuple[FaceSuperResolver, FaceSuperResolver]]:
    """(faithful, natural) resolvers of each default member that has a natural-detail twin, smallest input first."""
    from dicface.models.registry import natural_twin
    from dicface.pipeline.enhance import load_members

    family = replace(cfg.model, weights=None)
    return [(faithful, load_members(replace(family, scale=record.config.scale, fidelity=0.0), cfg.inference)[0][0])
            for faithful, record in load_members(replace(family, fidelity=1.0), cfg.inference)
            if natural_twin(record) is not None]


def run_fidelity_demo(out_dir: Path, cfg: RunConfig) -> Path | None:
    """``fidelity_comparison.png``: the astronaut's face at each scale with a natural-detail member, through H.264
    (bicubic | faithful | natural | truth), enlarged 2x for viewing; None where no member has a natural twin."""
    pairs = natural_pairs(cfg)
    if not pairs:
        return None
    sheet = fidelity_sheet([example_faces()[0][1]], pairs)
    path = out_dir / "fidelity_comparison.png"
    write_png(np.repeat(np.repeat(sheet, 2, axis=0), 2, axis=1), path)
    return path


DEMO_CLIP = {"count": 48, "width": 480, "height": 270, "face_widths": (16, 28, 44)}
DEMO_UPSCALE = 4


def run_video_demo(out_dir: Path, cfg: RunConfig, bars: BarFactory = no_bars) -> list[Path]:
    """Write ``example.mp4`` (small faces of real photos moving over a real scene, with audio), ``enhanced.mp4``
    (the whole video path of ``cfg`` at x4) and ``video_comparison.png`` (the last frame around each face:
    bicubic x4 | dicface). Returns the written paths."""
    from dicface.pipeline.examples import make_face_clip
    from dicface.pipeline.job import enhance_file
    from dicface.pipeline.runtime.build import open_runner

    example, enhanced = out_dir / "example.mp4", out_dir / "enhanced.mp4"
    truth = make_face_clip(example, **DEMO_CLIP)
    with open_runner(replace(cfg, enhance=replace(cfg.enhance, upscale=DEMO_UPSCALE))) as runner:
        report = enhance_file(example, enhanced, runner, bars=bars)
    sheet = out_dir / "video_comparison.png"
    write_png(_last_frame_sheet(example, enhanced, truth[-1]), sheet)
    return [example, enhanced, sheet] if report.faces_enhanced else [example, enhanced]


def _last_frame(path: Path) -> np.ndarray:
    import av

    with av.open(str(path)) as container:
        *_, frame = container.decode(video=0)
    return frame.to_ndarray(format="rgb24")


def _last_frame_sheet(example: Path, enhanced: Path, landmarks: np.ndarray) -> np.ndarray:
    """One row per face (landmarks (F, 68, 2) in input pixels): bicubic x4 of the input | the enhanced video."""
    k = DEMO_UPSCALE
    source, result = _last_frame(example), _last_frame(enhanced)
    bicubic = resize_bicubic(source, (source.shape[1] * k, source.shape[0] * k))
    rows = []
    for points in landmarks:
        cx, cy = (points.min(axis=0) + points.max(axis=0)) / 2 * k
        half = 1.2 * float((points.max(axis=0) - points.min(axis=0)).max()) * k
        x1, y1 = max(int(cx - half), 0), max(int(cy - half), 0)
        size = int(2 * half)
        pair = [resize_bicubic(im[y1 : y1 + size, x1 : x1 + size], HR_SIZE * 2) for im in (bicubic, result)]
        rows.append(np.concatenate([pair[0], np.full((HR_SIZE * 2, 4, 3), 255, np.uint8), pair[1]], axis=1))
    return np.concatenate(rows, axis=0)
