"""``dicface`` command line: argparse -> RunConfig -> work. The only module that prints errors.

Exit codes: 0 success; 1 other user error; 2 bad input or arguments; 3 weights problem; 5 an output cannot be
written (disk full, permission, read-only, name too long); 130 interrupted (Ctrl-C); 143 terminated (SIGTERM).
Anything that is not a DicfaceError is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from configs.schema import (
    DETECTORS,
    RUNTIMES,
    SEED_MODES,
    DetectConfig,
    EnhanceConfig,
    RunConfig,
    RuntimeConfig,
    load_config,
)
from models.errors import DicfaceError, InputError
from pipeline.align import AlignConfig
from pipeline.detect.regions import DetectSchedule
from pipeline.io import EncodeOptions

EPILOG = ("Exit codes: 0 ok, 1 error (or some videos of a job failed), 2 bad input, 3 weights problem, "
          "5 output cannot be written, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM). --debug shows tracebacks.")


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C is: outputs abandoned, temporary files removed, Ray actors ended."""


def _terminate(_signum: int, _frame: object) -> None:
    raise Terminated


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _scale(text: str) -> str | int:
    if text == "auto":
        return text
    if text in ("2", "4", "8"):
        return int(text)
    raise argparse.ArgumentTypeError(f"must be auto, 2, 4 or 8, got {text}")


SPLIT_AUTO_SECONDS = 60.0  # --split auto cuts files at least this long


def split_parts(text: str) -> str | int:
    return text if text == "auto" else positive_int(text)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="YAML configuration (default: configs/default.yaml)")
    p.add_argument("--weights", help="DIC weights file (default: the package's default weights)")
    p.add_argument("--scale", type=_scale, help="auto (default): each face goes to the DIC member whose input "
                   "fits it (16/32/64 px); 8, 4 or 2: that member alone")
    p.add_argument("--steps", type=positive_int, dest="num_steps", help="recurrent steps (default: as trained)")
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N (default: auto)")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), help="GPU autocast precision")
    p.add_argument("--batch", type=positive_int, dest="max_batch", help="faces per forward pass (default: 32)")
    p.add_argument("--threads", type=positive_int, help="CPU threads for torch (default: torch's choice)")


def _add_video_flags(p: argparse.ArgumentParser) -> None:
    """Detection, tracking, enhancement and encoding flags shared by ``enhance``, ``stream`` and the benchmarks. Each
    overrides its key of the run configuration (``--config``, see ``configs/default.yaml``) when given."""
    detect, enhance, align, encode = DetectConfig(), EnhanceConfig(), AlignConfig(), EncodeOptions()
    p.add_argument("--detector", choices=DETECTORS,
                   help=f"yunet (default, shipped, finds 12-40 px faces), insightface (SCRFD, needs "
                        f"--detector-model) or dlib HOG (large faces only); default {detect.detector}")
    p.add_argument("--detector-model", type=Path, help="the insightface detector ONNX (e.g. SCRFD)")
    p.add_argument("--detect-scale", type=float, help="enlarge frames by this before detection "
                   "(default 2 for yunet, 1 for insightface)")
    p.add_argument("--detect-every", type=positive_int,
                   help=f"search the whole frame for new faces every N-th frame, in between only around the "
                        f"tracked faces (default {detect.every})")
    p.add_argument("--seed", choices=SEED_MODES,
                   help=f"seed DIC's landmark branch with the tracked landmarks or not (default {enhance.seed})")
    p.add_argument("--feedback", choices=("on", "off"),
                   help="DIC's landmarks update the tracker (default off: measured, it raised the tracks' jitter "
                        "against known motion by 20 %%)")
    p.add_argument("--fusion", type=float,
                   help=f"temporal fusion: a track's SR face k frames old, carried along its motion, counts W**k "
                        f"against the current one where they agree (0: frame by frame; default "
                        f"{enhance.fusion.weight:g}, the last {enhance.fusion.frames} faces)")
    p.add_argument("--scene-cuts", choices=("on", "off"),
                   help="detect scene cuts and restart tracks and fusion there (default on)")
    p.add_argument("--min-face", type=float,
                   help=f"skip faces narrower than this (landmark extent, px; default {align.min_face_px:g})")
    p.add_argument("--max-face", type=float,
                   help=f"leave faces wider than this (landmark extent, px; default {align.max_face_px:g}); "
                        f"a face no DIC member fits without reducing it more than --max-reduction is left as it is "
                        f"too")
    p.add_argument("--max-reduction", type=float,
                   help=f"a face crop goes to the smallest DIC member it is reduced to by at most this factor "
                        f"(default {align.max_reduction:g}: detail kept); raise it to force larger faces "
                        f"through the members there are (e.g. 4 with a single 16-px model)")
    p.add_argument("--upscale", type=float, help="scale the whole frame by K (faces from DIC; default 1)")
    p.add_argument("--window", type=positive_int, help=f"frames per DIC batch (default {enhance.window})")
    p.add_argument("--codec", help=f"video encoder (default {encode.codec})")
    p.add_argument("--crf", type=int, help=f"x264/x265 quality, lower is better (default {encode.crf})")
    p.add_argument("--preset", help=f"x264/x265 preset (default {encode.preset})")
    p.add_argument("--pix-fmt", help="output pixel format; auto (default) keeps the input's "
                   "(10-bit stays 10-bit, 4:4:4 stays 4:4:4) where the encoder takes it, else yuv420p")


def _add_runtime_flags(p: argparse.ArgumentParser) -> None:
    """Where the stages run: in this process, or on Ray actor pools (this machine or a cluster)."""
    runtime = RuntimeConfig()
    g = p.add_argument_group("runtime")
    g.add_argument("--runtime", choices=RUNTIMES,
                   help="local: everything in this process; ray: detection and DIC on Ray actor pools (default: "
                        "ray for a job of many videos or with --address / RAY_ADDRESS, else local)")
    g.add_argument("--address", help="Ray cluster to join (auto or HOST:PORT; default RAY_ADDRESS, else an "
                   "embedded local Ray)")
    g.add_argument("--workers", type=positive_int, help="actors in each pool (detection, DIC); default: one per "
                   "two cores")
    g.add_argument("--streams", type=positive_int, help=f"videos of a job processed at once, sharing "
                   f"the pools (default {runtime.streams})")
    g.add_argument("--max-wait-ms", type=float, help=f"a DIC actor waits this long for faces of "
                   f"other frames and streams to fill a batch (default {runtime.max_wait_ms:g})")
    g.add_argument("--cpus-per-actor", type=float, help=f"CPUs (and threads) per actor (default "
                   f"{runtime.cpus_per_actor:g})")
    g.add_argument("--gpus-per-actor", type=float, help="GPUs per DIC actor, fractions share one (default 0)")
    g.add_argument("--detect-resources", help="custom Ray resources of detection actors, JSON ('{\"cam\": 1}')")
    g.add_argument("--dic-resources", help="custom Ray resources of DIC actors, JSON ('{\"gpu_node\": 1}')")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dicface",
        description="Face super-resolution for video with DIC (16 -> 128 px) and tracked-landmark seeding.",
        epilog=EPILOG,
    )
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("sr", help="super-resolve face crops (images) to 128x128 PNGs", epilog=EPILOG)
    p.add_argument("inputs", nargs="+", help="face images or folders of them (any size; resized as DIC expects)")
    p.add_argument("-o", "--output", required=True, type=Path, help="output folder")
    p.add_argument("--landmarks", action="store_true", help="also write <name>_landmarks.png with DIC's landmarks")
    _add_common(p)

    p = sub.add_parser("enhance", help="super-resolve the faces of a video (or image folder)", epilog=EPILOG)
    p.add_argument("input", help="video file, folder of frames, stream URL (rtsp://, http://), or a job of many "
                   "videos: a folder of video files or a quoted glob ('clips/*.mp4')")
    p.add_argument("-o", "--output", required=True, type=Path,
                   help="output video (.mp4, .mkv, .mov, .webm); for a job, an output folder")
    _add_video_flags(p)
    p.add_argument("--sr", choices=("dic", "none"), default="dic", help="none: detect and track only")
    p.add_argument("--preview", choices=("side-by-side",), help="write input and result side by side")
    p.add_argument("--report", type=Path, help="write a run report (JSON)")
    p.add_argument("--tracks", type=Path, help="write every frame's tracks and landmarks (JSON lines; for a job, "
                   "a folder of <name>.tracks.jsonl)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    _add_common(p)
    _add_runtime_flags(p)
    p.add_argument_group("runtime").add_argument(
        "--split", type=split_parts,
        help="cut one long file at keyframes into N parts enhanced at once and joined without re-encoding (Ray "
             f"runtime; auto: a part per two --workers, for a file of {SPLIT_AUTO_SECONDS:.0f} s or more; 1: never)")

    p = sub.add_parser("stream", help="super-resolve the faces of a live stream (RTSP): out to an RTSP server, "
                       "a file or a folder of segments", epilog=EPILOG)
    p.add_argument("input", help="stream URL (rtsp://HOST:PORT/PATH; with --listen, the address to listen on)")
    p.add_argument("-o", "--output", required=True,
                   help="rtsp://HOST:PORT/PATH (pushed to that server), a video file (written when the stream "
                        "stops), or a folder (one file per --segment-seconds)")
    _add_video_flags(p)
    p.add_argument("--sr", choices=("dic", "none"), default="dic", help="none: detect and track only")
    p.add_argument("--listen", action="store_true", help="wait for a camera or encoder to push the stream to "
                   "INPUT (RTSP RECORD) instead of pulling it from a server")
    p.add_argument("--max-pending", type=positive_int, default=8, help="decoded frames waiting for the pipeline; "
                   "beyond this the oldest are dropped to keep latency bounded (default 8)")
    p.add_argument("--reconnect-timeout", type=float, default=30.0, help="give up when the source stays away "
                   "this long, in seconds (default 30)")
    p.add_argument("--segment-seconds", type=float, default=60.0, help="length of each file for a folder output "
                   "(default 60)")
    p.add_argument("--duration", type=float, help="stop after this many seconds (default: until the stream "
                   "ends, Ctrl-C or SIGTERM)")
    p.add_argument("--report", type=Path, help="write a run report (JSON)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    _add_common(p)
    _add_runtime_flags(p)

    p = sub.add_parser("eval", help="DIC protocol on HR faces: PSNR/SSIM (Y, crop 8) vs bicubic", epilog=EPILOG)
    p.add_argument("hr_dir", nargs="+", help="folders or files of HR face crops (resized to 128 if needed)")
    p.add_argument("--limit", type=positive_int, help="evaluate only the first N faces")
    p.add_argument("--json", type=Path, help="also write the results table as JSON")
    p.add_argument("--markdown", type=Path, help="also write the results table as Markdown")
    p.add_argument("--landmarks", type=Path, help="68-point landmark JSON of the HR faces: adds landmark NME")
    p.add_argument("--seed", action="store_true", help="also run DIC seeded with those landmarks (dic+seed)")
    p.add_argument("--lr-dir", type=Path, help="LR faces paired with the HR faces by file name (any extension); "
                   "default: LR made from HR by PIL bicubic as in training")
    _add_common(p)

    p = sub.add_parser("bench", help="measure throughput", epilog=EPILOG)
    bench = p.add_subparsers(dest="target", required=True, metavar="TARGET")
    b = bench.add_parser("model", help="faces/s of the plain and the fast inference paths, same run")
    b.add_argument("--arch", choices=("full", "weights"), default="weights",
                   help="full: the released configuration with random weights; weights: --weights or the default")
    b.add_argument("--iters", type=positive_int, default=3, help="timed batches per path (default 3)")
    b.add_argument("--compile", action="store_true", help="torch.compile the fast path")
    _add_common(b)
    b = bench.add_parser("pipeline", help="frames/s of enhance (with and without SR) vs plain decode+encode, and "
                         "DIC's faces/s in the pipeline vs alone")
    b.add_argument("input", nargs="?", type=Path,
                   help="video to measure (default: generated 1280x720 and 1920x1080 clips of 3 real faces, "
                        "18-22 px)")
    b.add_argument("--frames", type=positive_int, default=100, help="length of the generated clip (default 100)")
    _add_video_flags(b)
    _add_common(b)
    _add_runtime_flags(b)
    b = bench.add_parser("quality", help="PSNR/SSIM/temporal error of the faces against a ground-truth render: "
                         "gain over bicubic per face size at x2 and x4, and what seeding, feedback and temporal "
                         "fusion each add")
    b.add_argument("--frames", type=positive_int, default=12, help="length of the generated clips (default 12)")
    b.add_argument("--faces", choices=("astronaut", "heldout"), default="astronaut",
                   help="face photos of the size table: the astronaut (default) or six held-out faces")
    b.add_argument("--input-crf", type=int, default=26, help="H.264 crf of the size table's input clips (26)")
    _add_video_flags(b)
    _add_common(b)
    b.set_defaults(upscale=4.0)

    p = sub.add_parser("eval-video", help="temporal stability of an output against its input, no ground truth "
                       "needed: warping error, appearance change and landmark jitter per face track", epilog=EPILOG)
    p.add_argument("input", type=Path, help="the original video")
    p.add_argument("output", type=Path, help="the enhanced video (any upscale of the input, same frames)")
    p.add_argument("--tracks", type=Path, help="the --tracks file of the run that made OUTPUT (default: find and "
                   "track the faces in INPUT)")
    p.add_argument("--plot", type=Path, help="PNG of the measures per track over time")
    p.add_argument("--json", type=Path, help="write the measures as JSON")
    p.add_argument("--detector", choices=("yunet", "insightface", "dlib"), default="yunet",
                   help="face detector when there is no --tracks file (default yunet)")
    p.add_argument("--detector-model", type=Path, help="the insightface detector ONNX (e.g. SCRFD)")
    p.add_argument("--detect-scale", type=float, help="enlarge frames by this before detection")
    p.add_argument("--detect-every", type=positive_int, default=DetectSchedule.every,
                   help=f"full-frame face search every N-th frame (default {DetectSchedule.every})")

    p = sub.add_parser("config", help="print the run configuration that --config and the flags make, as YAML "
                       "(every key, defaults included)", epilog=EPILOG)
    _add_video_flags(p)
    _add_common(p)
    _add_runtime_flags(p)
    p.add_argument("--split", type=split_parts, help="parts of one long file (see enhance --split)")

    p = sub.add_parser("demo", help="run on the bundled example faces (scikit-image photos)", epilog=EPILOG)
    p.add_argument("-o", "--output", type=Path, default=Path("dicface-demo"), help="output folder (dicface-demo)")
    p.add_argument("--no-video", action="store_true", help="only the face photos, not the example video")
    _add_common(p)

    p = sub.add_parser("prepare-data", help="68 landmarks for a folder of face photos (dlib), as a JSON file",
                       epilog=EPILOG)
    p.add_argument("image_dir", help="folder of face photos (one face each; the largest is kept)")
    p.add_argument("-o", "--output", required=True, type=Path, help="landmark JSON to write")
    p.add_argument("--upsample", type=int, default=0, help="dlib HOG upsampling for faces under ~80 px (default 0)")

    p = sub.add_parser("train", help="train DIC from a YAML config (resumable)", epilog=EPILOG)
    p.add_argument("--config", required=True, type=Path, help="training YAML, e.g. configs/train_default.yaml")
    p.add_argument("--iterations", type=positive_int, help="override the total number of iterations")
    p.add_argument("--out-dir", help="override the run folder")
    p.add_argument("--resume", action="store_true", help="continue from <out_dir>/last.pt")
    p.add_argument("--threads", type=positive_int, help="CPU threads for torch (per worker with --workers)")
    p.add_argument("--workers", type=positive_int, help="data-parallel workers on Ray Train (default: in-process)")
    p.add_argument("--gpus-per-worker", type=float, default=0.0, help="GPUs per Ray Train worker (fractions ok)")
    p.add_argument("--address", help="Ray cluster to join (auto or HOST:PORT; default RAY_ADDRESS or a local Ray)")

    p = sub.add_parser("export-weights", help="ship a trained checkpoint in models/weights/ with its card",
                       epilog=EPILOG)
    p.add_argument("checkpoint", help="best.pt / last.pt of a run, or any DIC state dict")
    p.add_argument("--name", required=True, help="weights name (file <name>.pt and card <name>.json)")
    p.add_argument("--default", action="store_true", help="make these the package's default weights")
    p.add_argument("--metrics", type=Path, help="'dicface eval --json' output to record on the card")
    p.add_argument("--train-config", type=Path, help="the training YAML, recorded on the card")
    p.add_argument("--iterations", type=int, help="training iterations behind the checkpoint")

    sub.add_parser("models", help="list the weights shipped with the package")
    return parser


def _on_off(value: str | None) -> bool | None:
    return None if value is None else value == "on"


def _run_config(args: argparse.Namespace) -> RunConfig:
    """``--config`` (default ``configs/default.yaml``) with the flags that were given on top (None: not given)."""
    flag = functools.partial(getattr, args)
    scale = flag("scale", None)
    overrides: dict[str, dict[str, object]] = {
        "model": {"weights": flag("weights", None), "num_steps": flag("num_steps", None),
                  "scale": None if scale == "auto" else scale},
        "inference": {"device": flag("device", None), "precision": flag("precision", None),
                      "max_batch": flag("max_batch", None), "compile": True if flag("compile", False) else None},
    }
    if hasattr(args, "detect_every"):  # the detection flags (video commands, eval-video)
        model = flag("detector_model", None)
        overrides["detect"] = {"detector": flag("detector", None), "every": args.detect_every,
                               "scale": flag("detect_scale", None), "model": str(model) if model else None}
    if hasattr(args, "window"):  # the video flags (_add_video_flags)
        fusion = args.fusion
        overrides |= {
            "align": {"min_face_px": args.min_face, "max_face_px": args.max_face,
                      "max_reduction": args.max_reduction},
            "enhance": {"window": args.window, "seed": args.seed, "feedback": _on_off(args.feedback),
                        "scene_cuts": _on_off(args.scene_cuts), "upscale": args.upscale,
                        "fusion": {"weight": fusion} if fusion is not None else {}},
            "encode": {"codec": args.codec, "crf": args.crf, "preset": args.preset, "pix_fmt": args.pix_fmt},
        }
    if hasattr(args, "max_wait_ms"):  # the runtime flags (_add_runtime_flags)
        overrides["runtime"] = {
            "runtime": args.runtime, "address": args.address, "workers": args.workers, "streams": args.streams,
            "max_wait_ms": args.max_wait_ms, "cpus_per_actor": args.cpus_per_actor,
            "gpus_per_actor": args.gpus_per_actor,
            "detect_resources": _resources(args.detect_resources, "--detect-resources"),
            "dic_resources": _resources(args.dic_resources, "--dic-resources"), "split": flag("split", None)}
    return load_config(flag("config", None), overrides)


def _resolver(cfg: RunConfig):  # noqa: ANN202 -- imported lazily to keep --help fast
    """One member: --weights, or the default member of --scale (x8 when not given)."""
    from models.inference import FaceSuperResolver
    from models.registry import family, load_model

    scale = cfg.model.scale or (None if cfg.model.weights else 8)
    model, record = load_model(family(cfg.model.weights, scale)[0], cfg.model.num_steps)
    print(f"weights: {record.name} (x{record.config.scale}, {record.file})", file=sys.stderr)
    return FaceSuperResolver(model, cfg.inference), record


def _draw_landmarks(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Shape: (128, 128, 3) uint8, (K, 2) -> (256, 256, 3) uint8 with the points drawn (2x for visibility)."""
    big = cv2.resize(image, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    for x, y in landmarks * 2:
        cv2.circle(big, (int(round(x)), int(round(y))), 2, (0, 255, 0), -1, lineType=cv2.LINE_AA)
    return big


def cmd_sr(args: argparse.Namespace) -> int:
    from models.evaluate import list_images, read_rgb
    from pipeline.files import prepare_output_dir, write_png

    cfg = _run_config(args)
    paths = list_images(args.inputs)
    out_dir = prepare_output_dir(args.output)
    names = [p.stem for p in paths]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise InputError(f"two inputs share the name {dup!r}; outputs would overwrite each other")
    from pipeline.align import route
    from pipeline.runtime.build import load_dic

    enhancer = load_dic(replace(cfg, enhance=replace(cfg.enhance, seed="none")), _log)
    sizes = enhancer.input_sizes
    batch = cfg.inference.max_batch
    with tqdm(total=len(paths), unit="face", desc="sr", file=sys.stderr) as bar:
        for start in range(0, len(paths), batch):
            chunk = paths[start : start + batch]
            faces = [read_rgb(p) for p in chunk]
            # each face to the member that fits it; faces larger than every member's reach to the largest
            routed = [route(min(f.shape[:2]), sizes, AlignConfig.max_reduction) or sizes[-1] for f in faces]
            sr = np.zeros((len(faces), 128, 128, 3), np.uint8)
            landmarks = np.zeros((len(faces), 68, 2), np.float32)
            for size in set(routed):
                group = [i for i, s in enumerate(routed) if s == size]
                sr[group], landmarks[group] = enhancer.resolvers[size].faces([faces[i] for i in group])
            for path, face, points in zip(chunk, sr, landmarks, strict=True):
                target = out_dir / f"{path.stem}.png"
                if target.resolve() == path.resolve():
                    raise InputError(f"{target}: output would overwrite the input; choose another -o folder")
                write_png(face, target)
                if args.landmarks:
                    write_png(_draw_landmarks(face, points), out_dir / f"{path.stem}_landmarks.png")
            bar.update(len(chunk))
    print(f"wrote {len(paths)} faces to {out_dir}", file=sys.stderr)
    return 0


def _log(message: str) -> None:
    print(message, file=sys.stderr)


def _mode(args: argparse.Namespace):  # noqa: ANN202 -- pipeline.runtime.build.RunMode, imported lazily
    """What the command decides for the runner: SR on or off, preview, and temporal measures (a file's
    ``--report``; the benchmarks ask with ``measure=True``)."""
    from pipeline.runtime.build import RunMode

    measure = getattr(args, "measure", False) or (args.command == "enhance" and args.report is not None)
    return RunMode(sr=getattr(args, "sr", "dic") == "dic", preview=getattr(args, "preview", None) is not None,
                   measure=measure)


def _resources(text: str | None, flag: str) -> dict[str, float] | None:
    """A JSON object of Ray resource amounts (None: the flag was not given)."""
    if not text:
        return None
    try:
        value = json.loads(text)
        if isinstance(value, dict) and all(isinstance(v, int | float) for v in value.values()):
            return {str(k): float(v) for k, v in value.items()}
    except json.JSONDecodeError:
        pass
    raise InputError(f"{flag} takes a JSON object of resource amounts, e.g. '{{\"node2\": 1}}', got {text!r}")


def _runner(args: argparse.Namespace, cfg: RunConfig, stack: contextlib.ExitStack, many: bool):  # noqa: ANN202
    from pipeline.runtime.build import build_runner

    return build_runner(cfg, _mode(args), stack, many, _log)


def _pool_usage(runner) -> dict[str, object]:  # noqa: ANN001 -- a StreamRunner
    """Per-pool utilisation of a Ray run, for the report and the summary line; empty in-process."""
    from dataclasses import asdict

    return {name: asdict(u) for name, u in runner.usage().items()}


def _usage_line(usage: dict[str, object]) -> str:
    return ", ".join(f"{name} busy {u['busy_percent']}% ({u['actors']} actors, {u['retries']} retried)"
                     for name, u in usage.items())


def _report_out(args: argparse.Namespace, summary: dict[str, object], usage: dict[str, object]) -> None:
    """The pools' line (Ray runs) and the ``--report`` JSON, written atomically."""
    from models.atomic import atomic_output

    if usage:
        print(_usage_line(usage))
    if args.report:
        with atomic_output(args.report) as tmp:
            tmp.write_text(json.dumps(summary | ({"pools": usage} if usage else {}), indent=2, default=str))


def _input_problems(report) -> str | None:  # noqa: ANN001 -- a RunReport
    problems = [report.input_warning] if report.input_warning else []
    if report.corrupt_packets:
        problems.append(f"{report.corrupt_packets} corrupt packets skipped")
    if report.resized_frames:
        problems.append(f"the resolution changed: {report.resized_frames} frames scaled to the first frame's size")
    if report.dropped_streams:
        problems.append(f"the output container cannot hold {', '.join(report.dropped_streams)}: left out "
                        f"(use .mkv to keep them)")
    if report.retimed_frames:
        problems.append(f"timestamps went back: {report.retimed_frames} frames moved after the frame before")
    return "; ".join(problems) or None


def _writable_folder(folder: Path) -> None:
    if not folder.is_dir():
        raise InputError(f"{folder}: output folder does not exist")
    if not os.access(folder, os.W_OK):
        raise InputError(f"{folder}: output folder is not writable")


def _split(cfg: RunConfig, source: Path | str, out: Path) -> tuple[int, float]:
    """(parts, shortest file to cut in seconds) for one video: ``--split N`` asks for N parts (an error where
    parts cannot run at once or be joined). ``auto`` cuts a long file on Ray into one part per two DIC actors: one
    stream keeps at most two DIC windows in flight, so it already keeps two actors busy (measured on 2 cores: a
    video split in 2 parts ran at 0.93x the whole video with 2 workers per pool)."""
    from pipeline.io import is_url
    from pipeline.runtime.build import use_ray
    from pipeline.runtime.ray_runtime import default_workers
    from pipeline.segments import SPLITTABLE_SUFFIXES

    splittable = not is_url(source) and Path(source).is_file() and out.suffix.lower() in SPLITTABLE_SUFFIXES
    split = cfg.runtime.split
    if split == "auto":
        parts = (cfg.runtime.workers or default_workers()) // 2
        ok = parts > 1 and splittable and use_ray(cfg, many=False)
        return (parts, SPLIT_AUTO_SECONDS) if ok else (1, 0.0)
    assert isinstance(split, int)
    if split > 1 and not use_ray(cfg, many=False):
        raise InputError("--split runs the parts at once on Ray actor pools: add --runtime ray")
    if split > 1 and not splittable:
        raise InputError(f"--split cuts a video file into {', '.join(SPLITTABLE_SUFFIXES)} parts; "
                         f"{source} -> {out} cannot be split (use --split 1)")
    return split, 0.0


def _warn_leftovers(*folders: Path) -> None:
    from pipeline.job import leftover_temporaries

    for folder in dict.fromkeys(folders):
        found = leftover_temporaries(folder)
        if found:
            print(f"dicface: warning: {folder} holds {len(found)} unfinished temporary file(s) of an interrupted "
                  f"run (e.g. {found[0].name}); they are ignored: delete them", file=sys.stderr)


def cmd_enhance(args: argparse.Namespace) -> int:
    from pipeline.io import is_url
    from pipeline.job import check_output, enhance_file, enhance_split, find_videos

    videos = find_videos(args.input)
    if videos is not None:
        _warn_leftovers(*(v.parent for v in videos), Path(args.output))
        return _enhance_job(args, videos)
    source_path, out = (args.input if is_url(args.input) else Path(args.input)), Path(args.output)
    check_output(out, source_path, args.overwrite)
    _writable_folder(out.parent)
    _warn_leftovers(out.parent)
    cfg = _run_config(args)
    encode = cfg.encode
    parts, min_seconds = _split(cfg, source_path, out)
    with contextlib.ExitStack() as stack:
        runner = _runner(args, cfg, stack, many=False)
        if parts > 1:
            report = enhance_split(source_path, out, runner, parts, encode, args.tracks, parts, min_seconds)
        else:
            report = enhance_file(source_path, out, runner, encode, args.tracks)
        usage = _pool_usage(runner)
    summary = report.to_dict()
    problems = _input_problems(report)
    if problems:
        print(f"dicface: warning: {source_path}: {problems}", file=sys.stderr)
    members = ", ".join(f"{k} {v}" for k, v in sorted(report.faces_by_member.items(), key=lambda kv: -int(kv[0][1:])))
    print(f"{report.frames_out}/{report.frames_in} frames, {report.faces_enhanced} faces enhanced"
          f"{f' ({members})' if members else ''}, "
          f"{report.tracks} tracks, {summary['fps']} frames/s -> {out}")
    summary.update(input=str(source_path), output=str(out), options=vars(args) | {"output": str(out)},
                   config=cfg.to_dict())
    _report_out(args, summary, usage)
    return 0


def _enhance_job(args: argparse.Namespace, videos: list[Path]) -> int:
    """Many videos into the folder ``-o``; a failing video is reported and the others still run. Exit 1 if any
    failed."""
    from models.atomic import atomic_output
    from pipeline.io import WRITABLE_SUFFIXES
    from pipeline.job import enhance_many
    from pipeline.runtime.build import use_ray

    if not videos:
        raise InputError(f"{args.input}: no video matches")
    out_dir = Path(args.output)
    if out_dir.suffix.lower() in WRITABLE_SUFFIXES:
        raise InputError(f"{args.input} holds {len(videos)} videos: -o must be a folder, not {out_dir.name}")
    _writable_folder(out_dir.parent)
    out_dir.mkdir(exist_ok=True)
    tracks_dir = Path(args.tracks) if args.tracks else None
    if tracks_dir:
        tracks_dir.mkdir(parents=True, exist_ok=True)
    cfg = _run_config(args)
    encode = cfg.encode
    with contextlib.ExitStack() as stack:
        on_ray = use_ray(cfg, many=len(videos) > 1)
        runner = _runner(args, cfg, stack, many=len(videos) > 1)
        streams, status = (cfg.runtime.streams, runner.queue_line) if on_ray else (1, None)
        results = enhance_many(videos, out_dir, runner, encode, tracks_dir, args.overwrite, streams, status)
        usage = _pool_usage(runner)
    width = max(len(r.source.name) for r in results)
    for r in results:
        if r.error:
            print(f"{r.source.name:<{width}}  FAILED  {r.error}")
        else:
            warning = _input_problems(r.report)
            print(f"{r.source.name:<{width}}  ok      {r.report.frames_out} frames, {r.report.faces_enhanced} faces, "
                  f"{r.report.to_dict()['fps']} frames/s -> {r.output}" + (f" (warning: {warning})" if warning else ""))
    failed = sum(r.error is not None for r in results)
    print(f"{len(results) - failed}/{len(results)} videos done" + (f", {failed} failed" if failed else ""))
    if usage:
        print(_usage_line(usage))
    if args.report:
        rows = [{"input": str(r.source), "output": None if r.error else str(r.output), "error": r.error,
                 **(r.report.to_dict() if r.report else {})} for r in results]
        with atomic_output(args.report) as tmp:
            tmp.write_text(json.dumps({"videos": rows, "failed": failed, "pools": usage, "config": cfg.to_dict()},
                                     indent=2))
    return 1 if failed else 0


def _stream_sink(args: argparse.Namespace, info, encode):  # noqa: ANN001, ANN202 -- lazy imports
    """An RTSP server URL, a folder (segments) or a file."""
    from pipeline.io import VideoSink, is_url
    from pipeline.job import check_output
    from pipeline.live import SegmentSink

    if is_url(args.output):
        return VideoSink(args.output, info, (), encode)
    out = Path(args.output)
    if out.is_dir() or not out.suffix:
        out.mkdir(parents=True, exist_ok=True)
        return SegmentSink(out, info, encode, args.segment_seconds)
    check_output(out, args.input, args.overwrite)
    _writable_folder(out.parent)
    return VideoSink(out, info, (), encode)


def cmd_stream(args: argparse.Namespace) -> int:
    import signal
    import threading

    from pipeline.io import is_url
    from pipeline.live import LiveOptions, LiveSource

    if not is_url(args.input):
        raise InputError(f"{args.input}: not a stream URL; use 'dicface enhance' for files")
    try:
        live = LiveOptions(listen=args.listen, max_pending=args.max_pending, reconnect_timeout=args.reconnect_timeout)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    cfg = _run_config(args)
    encode = cfg.encode
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        print(f"\ndicface: {signal.Signals(signum).name}: finishing the stream", file=sys.stderr)
        stop.set()
        signal.signal(signum, signal.SIG_DFL)  # a second signal ends at once

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    timer = threading.Timer(args.duration, stop.set) if args.duration else None
    try:
        with contextlib.ExitStack() as stack:
            runner = _runner(args, cfg, stack, many=False)
            print(f"waiting for {args.input}" if args.listen else f"connecting to {args.input}", file=sys.stderr)
            source = stack.enter_context(LiveSource(args.input, live, stop))
            sink = stack.enter_context(_stream_sink(args, source.info, encode))
            bar = stack.enter_context(tqdm(unit="frame", desc=args.input, file=sys.stderr))

            def progress(report) -> None:  # noqa: ANN001 -- RunReport
                bar.update(report.frames_out - bar.n)
                bar.set_postfix(faces=report.faces_enhanced, dropped=source.dropped, reconnects=source.reconnects)

            if timer:
                timer.start()
            report = runner.run(source, sink, None, progress)
            report.dropped_frames, report.reconnects = source.dropped, source.reconnects
            usage = _pool_usage(runner)
    finally:
        if timer:
            timer.cancel()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    summary = report.to_dict()
    if report.input_warning:
        print(f"dicface: warning: {args.input}: {report.input_warning}", file=sys.stderr)
    print(f"{report.frames_out} frames, {report.dropped_frames} dropped, {report.reconnects} reconnects, "
          f"{report.faces_enhanced} faces enhanced, {summary['fps']} frames/s -> {args.output}")
    summary.update(input=args.input, output=str(args.output), config=cfg.to_dict())
    _report_out(args, summary, usage)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from models.atomic import atomic_output
    from models.data import read_landmarks
    from models.evaluate import evaluate_faces, list_images, read_rgb
    from models.faces import denormalise, normalise
    from models.heatmaps import decode_landmarks, render_heatmaps

    cfg = _run_config(args)
    table = read_landmarks(args.landmarks) if args.landmarks else {}
    if args.seed and not table:
        raise InputError("--seed needs --landmarks (the seed comes from known landmarks)")
    paths = list_images(args.hr_dir)
    if args.seed:
        paths = [p for p in paths if p.name in table]
    paths = paths[: args.limit]
    resolver, record = _resolver(cfg)

    def super_resolve(lrs: list[np.ndarray], seeds: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        out = resolver(normalise(np.stack(lrs)), None if seeds is None else render_heatmaps(seeds))
        return denormalise(out.sr), decode_landmarks(out.heatmaps).numpy()

    lr_paths = _paired_lr(paths, args.lr_dir) if args.lr_dir else None

    def faces():  # noqa: ANN202
        for i, path in enumerate(tqdm(paths, unit="face", desc="eval", file=sys.stderr)):
            face = (read_rgb(path), table.get(path.name))
            yield face if lr_paths is None else (*face, read_rgb(lr_paths[i]))

    result = evaluate_faces(faces(), super_resolve, batch=cfg.inference.max_batch, seeded=args.seed,
                            lr_size=record.config.input_size)
    rows = result.table()
    text = (f"{result.count} faces, Y channel, {result.crop}-px border crop, Gaussian SSIM; "
            f"x{record.config.scale} ({record.config.input_size} -> 128 px), weights {record.name}\n\n"
            f"{result.markdown()}\n\n"
            f"DIC vs bicubic: {rows[1]['psnr_y'] - rows[0]['psnr_y']:+.2f} dB PSNR-Y, "
            f"{rows[1]['ssim_y'] - rows[0]['ssim_y']:+.4f} SSIM-Y\n")
    print("\n" + text)
    if args.json:
        with atomic_output(args.json) as tmp:
            tmp.write_text(json.dumps({"weights": str(record.file), "scale": record.config.scale,
                                       "faces": result.count, "results": rows}, indent=2))
    if args.markdown:
        with atomic_output(args.markdown) as tmp:
            tmp.write_text(text)
    return 0


def _paired_lr(hr_paths: list[Path], lr_dir: Path) -> list[Path]:
    """The LR face of each HR face: the file in ``lr_dir`` with the same stem."""
    from models.evaluate import list_images

    by_stem = {p.stem: p for p in list_images([lr_dir])}
    missing = [p.name for p in hr_paths if p.stem not in by_stem]
    if missing:
        raise InputError(f"{lr_dir}: no LR face for {len(missing)} HR faces (e.g. {missing[0]}); "
                         "LR and HR files are paired by name")
    return [by_stem[p.stem] for p in hr_paths]


def cmd_bench(args: argparse.Namespace) -> int:
    return {"pipeline": _bench_pipeline, "quality": _bench_quality, "model": _bench_model}[args.target](args)


def _runner_factory(args: argparse.Namespace, cfg: RunConfig):  # noqa: ANN202 -- pipeline.bench.MakeRunner
    """Runners from the user's flags, with SR on or off, a seed mode and other flags overridden by keyword; the
    model is loaded once."""
    from pipeline.enhance import Enhancer
    from pipeline.runtime.build import load_dic, local_runner

    loaded = None

    def make(sr: bool, seed: str, upscale: float | None = None, **flags: object):  # noqa: ANN202
        nonlocal loaded
        if sr and loaded is None:
            loaded = load_dic(cfg, _log)
        given = argparse.Namespace(**{**vars(args), "upscale": upscale or args.upscale, **flags})
        enhancer = Enhancer(list(loaded.resolvers.values()), seed=seed) if sr else None
        return local_runner(_run_config(given), _mode(given), enhancer)

    return make


def _bench_quality(args: argparse.Namespace) -> int:
    from pipeline.bench import QUALITY_FACES, SizeRow, bench_quality, bench_sizes
    from pipeline.examples import astronaut_faces, heldout_faces

    scale = int(args.upscale)
    if scale != args.upscale or not 2 <= scale <= 8:
        raise InputError(f"bench quality needs a whole --upscale between 2 and 8, got {args.upscale}")
    make = _runner_factory(args, _run_config(args))
    sources = heldout_faces() if args.faces == "heldout" else astronaut_faces()
    rows = bench_sizes(make, sources, frames=args.frames, crf=args.input_crf)
    print(f"gain over bicubic per face size: {args.faces} faces, H.264 crf {args.input_crf} input, {args.frames} "
          f"frames, against a xK render of the same scene; face regions only; default flags")
    print(f"{'face px':>7} {'xK':>3} {'bicubic':>8} {'dicface':>8} {'gain dB':>8} {'SSIM +':>7} "
          f"{'temporal b/d':>13}  members")
    for row in rows:
        if not isinstance(row, SizeRow):
            print(f"{row[0]:>7} {row[1]:>3}   (no source photo is sharp enough for a x{row[1]} truth)")
            continue
        members = ", ".join(f"{k}: {v}" for k, v in sorted(row.by_member.items())) or "none"
        print(f"{row.width:>7} {row.scale:>3} {row.bicubic.psnr:8.2f} {row.dicface.psnr:8.2f} {row.gain:+8.2f} "
              f"{row.dicface.ssim - row.bicubic.ssim:+7.4f} {row.bicubic.temporal:6.2f}/{row.dicface.temporal:6.2f}"
              f"  {members}")
    sharp = [f for f in sources if f.head.shape[1] >= max(QUALITY_FACES) * scale] or sources
    rows = bench_quality(make, args.frames, scale, args.input_crf, sharp)
    print(f"\n{args.faces} faces {'/'.join(map(str, QUALITY_FACES))} px wide, H.264 crf {args.input_crf}, "
          f"{args.frames} frames, x{scale}, against a x{scale} render of the same scene; face regions only.\n"
          f"temporal: |output change - true change| between frames; warp: warping error along the input's flow "
          f"(no truth; bicubic {rows[0].temporal.mean('warp'):.3f})")
    print(f"{'method':<24} {'PSNR-Y':>7} {'SSIM-Y':>7} {'temporal':>9} {'warp':>7} {'appear.':>7} faces")
    for row in rows:
        print(f"{row.label:<24} {row.score.psnr:7.2f} {row.score.ssim:7.4f} {row.score.temporal:9.3f} "
              f"{row.temporal.mean('warp') or 0:7.3f} {row.temporal.mean('appearance') or 0:7.3f} "
              f"{row.faces_enhanced}")
    return 0


def _bench_pipeline(args: argparse.Namespace) -> int:
    from pipeline.bench import BENCH_FACES, bench_pipeline

    if args.input is not None and not args.input.is_file():
        raise InputError(f"{args.input}: no such video file")
    cfg = _run_config(args)
    benches = bench_pipeline(args.input, _runner_factory(args, cfg), cfg.encode, args.frames)
    for bench in benches:
        rows = bench.rows
        name = args.input.name if args.input else (f"generated {bench.size[0]}x{bench.size[1]} clip, 3 faces of "
                                                   f"{min(BENCH_FACES)}-{max(BENCH_FACES)} px")
        print(f"{name}: {rows[0].report.frames_in} frames, full-frame detection every {cfg.detect.every} frames, "
              f"{cfg.encode.codec} {cfg.encode.preset}")
        for row in rows:
            print(f"{row.label:<20} {row.fps:7.2f} frames/s  {row.fps / rows[0].fps:5.2f}x decode+encode  "
                  f"faces enhanced {row.report.faces_enhanced}")
        for row in rows[1:]:
            print(f"{row.label}, ms/frame: " + ", ".join(
                f"{k} {v:.1f}" for k, v in row.report.ms_per_frame().items() if v))
        if bench.dic is not None:
            d = bench.dic
            print(f"DIC in the pipeline {d.pipeline_faces_per_s:.1f} faces/s at {d.batch:.1f} faces per call; "
                  f"alone at that batch {d.alone_faces_per_s:.1f} faces/s: {d.ratio:.2f}x\n")
    if cfg.runtime.runtime == "ray":
        _bench_runtime(args, cfg)
    return 0


def _bench_runtime(args: argparse.Namespace, cfg: RunConfig) -> None:
    """In-process vs Ray, and a job on Ray with 1 vs 2 workers per pool (``bench pipeline --runtime ray``)."""
    from pipeline.bench import bench_runtime
    from pipeline.runtime.build import load_dic, local_runner, ray_runner

    cpus, streams, mode = cfg.runtime.cpus_per_actor, cfg.runtime.streams, _mode(args)

    def make_ray(workers: int):  # noqa: ANN202 -- RayRunner
        runtime = replace(cfg.runtime, workers=workers, cpus_per_actor=cpus / workers)  # the same CPUs, shared
        return ray_runner(replace(cfg, runtime=runtime), mode, _log)

    rows = bench_runtime(lambda: local_runner(cfg, mode, load_dic(cfg, _log)), make_ray, cfg.encode,
                         frames=args.frames, streams=streams)
    print(f"runtime: generated 640x360 clips of {args.frames} frames, 3 faces of 18-22 px")
    for row in rows:
        cpu = "" if row.dic_ms is None else (f"  DIC busy {row.dic_busy_percent:.0f}%, per frame: DIC {row.dic_ms:.0f} "
                                             f"ms, the rest {row.other_ms:.0f} ms")
        print(f"{row.label:<26} {row.fps:7.2f} frames/s ({row.frames} frames){cpu}")
    one, two = rows[2], rows[3]
    cores = os.cpu_count() or 1
    # On `cores` cores, 2 workers cannot go faster than all cores busy with the CPU work of a frame, nor than 2 DIC
    # actors running flat out.
    bound = min(cores / ((one.dic_ms + one.other_ms) / 1000), 2 / (one.dic_ms / 1000)) / one.fps
    print(f"Ray / in-process (1 video): {rows[1].fps / rows[0].fps:.2f}x; job with 2 workers / 1 worker: "
          f"{two.fps / one.fps:.2f}x (at most {bound:.2f}x on {cores} cores from the 1-worker run's CPU time per "
          f"frame); 1 long video in {streams} parts / whole: {rows[5].fps / rows[4].fps:.2f}x")


def _bench_model(args: argparse.Namespace) -> int:
    from models.bench import bench_model
    from models.dic import DIC
    from models.registry import family, load_model

    cfg = _run_config(args)
    if args.arch == "full":
        models = [(DIC(), "released DIC configuration (random weights)")]
    else:
        models = [(model, f"{record.name} (x{record.config.scale}, {record.file})")
                  for model, record in (load_model(r, cfg.model.num_steps)
                                        for r in family(cfg.model.weights, cfg.model.scale))]
    for model, label in models:
        n_params = sum(p.numel() for p in model.parameters())
        r = bench_model(model, cfg.inference, batch=cfg.inference.max_batch, iters=args.iters)
        size = model.cfg.input_size
        print(f"model: {label}, {size} -> 128 px, {n_params:,} parameters")
        print(f"device {r.device}, threads {r.threads}, batch {r.batch}, {r.iters} timed batches per path")
        fast_label = (f"fast path (inference_mode, channels-last, {r.fast_precision}"
                      f"{', compiled' if args.compile else ''})")
        width = max(len(fast_label), 30)
        print(f"{'plain path (no_grad, fp32)':<{width}} {r.plain_faces_per_s:8.2f} faces/s")
        print(f"{fast_label:<{width}} {r.fast_faces_per_s:8.2f} faces/s")
        print(f"fast/plain: {r.speedup:.2f}x   max |SR difference|: {r.max_abs_diff:.2e}\n")
    return 0


def cmd_eval_video(args: argparse.Namespace) -> int:
    from pipeline.detect.regions import ScheduledDetector
    from pipeline.eval_video import evaluate, report_dict, track_rows, tracks_from_file, write_plot
    from pipeline.runtime.build import detector_spec

    for path in (args.input, args.output):
        if not path.is_file():
            raise InputError(f"{path}: no such video file")
    tracks = tracks_from_file(args.tracks) if args.tracks else None
    cfg = _run_config(args)
    detector = None if tracks else ScheduledDetector(detector_spec(cfg).build(), DetectSchedule(cfg.detect.every))
    with tqdm(desc="eval-video", unit="frame", disable=None) as bar:
        meter = evaluate(args.input, args.output, detector, tracks, progress=lambda n: bar.update(n - bar.n))
    summary, rows = meter.summary(), track_rows(meter)
    print(f"{'track':>5} {'pairs':>5} {'warp out/bicubic':>17} {'appearance out/bicubic':>23} {'jitter':>8}")
    for row in rows:
        jitter = f"{row.jitter:8.4f}" if row.jitter is not None else f"{'-':>8}"
        print(f"{row.track_id:>5} {row.frames:>5} {row.warp:8.3f}/{row.warp_bicubic:<8.3f} "
              f"{row.appearance:11.3f}/{row.appearance_bicubic:<11.3f} {jitter}")
    overall = summary.to_dict()
    if not summary.pairs:
        print("no face was tracked in two consecutive frames: nothing to measure")
    else:
        print(f"{'all':>5} {summary.pairs:>5} {overall['warping_error']:8.3f}/{overall['warping_error_bicubic']:<8.3f} "
              f"{overall['appearance_change']:11.3f}/{overall['appearance_change_bicubic']:<11.3f} "
              f"{overall['landmark_jitter'] if overall['landmark_jitter'] is not None else '-':>8}")
        print("warping error: change along the input's motion that the input does not show (Y levels; lower is "
              "steadier); bicubic: the same for a bicubic upscale of the input")
    if args.json:
        from models.atomic import atomic_output

        with atomic_output(args.json) as tmp:
            tmp.write_text(json.dumps(report_dict(summary, rows) | {"input": str(args.input),
                                                                     "output": str(args.output)}, indent=2))
    if args.plot:
        write_plot(meter, args.plot, f"{args.output.name} vs {args.input.name}")
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    import yaml

    print(yaml.safe_dump(json.loads(json.dumps(_run_config(args).to_dict())), sort_keys=False), end="")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from pipeline.demo import DEMO_UPSCALE, run_demo, run_video_demo
    from pipeline.files import prepare_output_dir
    from pipeline.runtime.build import load_dic

    cfg = _run_config(args)
    out_dir = prepare_output_dir(args.output)
    resolver, _ = _resolver(cfg)
    written = run_demo(out_dir, resolver)
    print(f"wrote {len(written)} files to {out_dir}; see {written[-1]} (16-px input | bicubic | DIC)")
    if not args.no_video:
        video = run_video_demo(out_dir, load_dic(replace(cfg, enhance=replace(cfg.enhance, seed="tracker")), _log))
        print(f"video: {video[0]} -> {video[1]} (x{DEMO_UPSCALE}); see {video[-1]} (bicubic | dicface)")
    return 0


def cmd_prepare_data(args: argparse.Namespace) -> int:
    from pipeline.detect.dlib_backend import DlibDetector
    from pipeline.prepare import prepare_landmarks

    written, missed = prepare_landmarks(args.image_dir, DlibDetector(upsample=args.upsample), args.output)
    print(f"wrote landmarks of {written} faces to {args.output}; no face found in {len(missed)} images"
          + (f" (e.g. {', '.join(missed[:3])})" if missed else ""))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from dataclasses import replace

    import torch

    from configs.schema import load_train_config
    from models.train import Trainer, load_training_data

    cfg = load_train_config(args.config, {"iterations": args.iterations, "out_dir": args.out_dir})
    last = Path(cfg.out_dir) / "last.pt"
    if last.is_file() and not args.resume:
        raise InputError(f"{last} exists: pass --resume to continue that run, or choose another --out-dir")
    if args.workers or args.address:
        from models.distributed import ClusterOptions, train_on_ray

        options = ClusterOptions(workers=args.workers or 1, gpus_per_worker=args.gpus_per_worker,
                                 threads_per_worker=args.threads, address=args.address)
        print(f"training on Ray: {options.workers} workers, {options.gpus_per_worker} GPUs each; "
              f"run folder {cfg.out_dir}", file=sys.stderr)
        train_on_ray(cfg, options, resume=args.resume)
        print(f"done: {cfg.out_dir} (last.pt, best.pt, log.csv)")
        return 0
    if args.resume and last.is_file():
        cfg = replace(cfg, init=None, hg_init=None)  # the resumed state replaces them: their files may be gone
    data, val = load_training_data(cfg)
    trainer = Trainer(cfg, data, val)
    if args.resume and last.is_file():
        trainer.resume(last)
        print(f"resuming from {last} at iteration {trainer.iteration}", file=sys.stderr)
    print(f"training on {len(data)} faces, {sum(p.numel() for p in trainer.model.parameters()):,} parameters, "
          f"{torch.get_num_threads()} threads, {trainer.device}; run folder {cfg.out_dir}", file=sys.stderr)
    trainer.run()
    best = (f"best validation NME {-trainer.best_score:.4f}" if cfg.stage == "hg"
            else f"best validation PSNR-Y {trainer.best_score:.2f} dB")
    print(f"done: {cfg.out_dir}/best.pt ({best})")
    return 0


def cmd_export_weights(args: argparse.Namespace) -> int:
    import yaml

    from models.registry import export_weights

    metrics = json.loads(args.metrics.read_text()) if args.metrics else {}
    training = {"iterations": args.iterations}
    if args.train_config:
        training["config"] = yaml.safe_load(args.train_config.read_text())
    record = export_weights(args.checkpoint, args.name, default=args.default, metrics=metrics, training=training)
    print(f"wrote {record.file} and its card ({record.sha256[:12]}…){' as the default' if record.default else ''}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from models.registry import WEIGHTS_DIR, list_weights

    records = list_weights()
    if not records:
        print(f"no weights are shipped in {WEIGHTS_DIR}; pass --weights FILE to the commands")
    for r in records:
        mark = f" (default x{r.config.scale})" if r.default else ""
        print(f"{r.name}{mark}: x{r.config.scale}, {r.config.input_size} -> 128 px, {r.file.name}  {r.config}\n"
              f"  licence: {r.licence}\n  metrics: {r.metrics}")
    return 0


COMMANDS = {
    "sr": cmd_sr,
    "enhance": cmd_enhance,
    "stream": cmd_stream,
    "eval": cmd_eval,
    "eval-video": cmd_eval_video,
    "config": cmd_config,
    "bench": cmd_bench,
    "demo": cmd_demo,
    "prepare-data": cmd_prepare_data,
    "train": cmd_train,
    "export-weights": cmd_export_weights,
    "models": cmd_models,
}


def main(argv: Sequence[str] | None = None) -> int:
    import signal
    import threading

    args = build_parser().parse_args(argv)
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main else None
    try:
        if getattr(args, "threads", None):
            import torch

            torch.set_num_threads(args.threads)
        return COMMANDS[args.command](args)
    except DicfaceError as exc:
        if args.debug:
            raise
        print(f"dicface: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Terminated:
        print("dicface: terminated (SIGTERM); unfinished outputs removed", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("dicface: interrupted; unfinished outputs removed", file=sys.stderr)
        return 130
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


if __name__ == "__main__":
    sys.exit(main())
