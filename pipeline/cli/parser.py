"""The ``dicface`` argument parser: every command and flag. Flags of the run configuration default to "not given"
(None) and show the dataclasses' defaults in their help."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from dicface.configs.model import INFERENCE_BACKENDS, INFERENCE_PRECISIONS
from dicface.configs.schema import RUNTIMES, SEED_MODES, SPLIT_AUTO_SECONDS, EnhanceConfig, RuntimeConfig
from dicface.configs.video import DETECTORS, AlignConfig, DetectConfig, EncodeOptions

EPILOG = ("Exit codes: 0 ok, 1 error (or some videos of a job failed), 2 bad input, 3 weights problem, "
          "5 output cannot be written, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM). --debug shows tracebacks.")


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _int_in(low: int, high: int, what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {what} from {low} to {high}, got {text}")
        return value

    parse.__name__ = "integer"  # argparse's message for a non-number: "invalid integer value"
    return parse


def _scale(text: str) -> str | int:
    if text == "auto":
        return text
    if text in ("2", "4", "8"):
        return int(text)
    raise argparse.ArgumentTypeError(f"must be auto, 2, 4 or 8, got {text}")


def split_parts(text: str) -> str | int:
    return text if text == "auto" else positive_int(text)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="YAML configuration (default: configs/default.yaml)")
    p.add_argument("--weights", help="DIC weights file (default: the package's default weights)")
    p.add_argument("--scale", type=_scale, help="auto (default): each face goes to the DIC member whose input "
                   "fits it (16/32/64 px); 8, 4 or 2: that member alone")
    p.add_argument("--steps", type=positive_int, dest="num_steps", help="recurrent steps (default: as trained)")
    p.add_argument("--fidelity", type=float, help="1 (default): faithful members (highest PSNR, smooth); 0: the "
                   "natural-detail members where the package has them (sharper, invented detail); between: blended")
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N (default: auto)")
    p.add_argument("--precision", choices=INFERENCE_PRECISIONS,
                   help="precision of the fast path; auto (default): bf16 on GPUs with it and on CPUs that compute "
                   "bf16 natively (AVX512_BF16 or AMX: 2-4x faster there, within 0.002 dB), else fp32")
    p.add_argument("--backend", choices=INFERENCE_BACKENDS,
                   help="auto (default): OpenVINO on the CPU where installed (1.1-1.5x torch), else torch")
    p.add_argument("--batch", type=positive_int, dest="max_batch", help="faces per forward pass (default: 32)")
    p.add_argument("--threads", type=positive_int,
                   help="CPU threads for DIC on torch or OpenVINO (default: torch's choice)")


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
    p.add_argument("--detect-gate", choices=("on", "off"),
                   help=f"a scheduled search looks only where the picture changed since the last one, camera "
                        f"motion undone; off searches the whole frame (default {'on' if detect.gate else 'off'})")
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
    noise = parser.add_mutually_exclusive_group()
    noise.add_argument("-v", "--verbose", action="store_true", help="also say what happens inside (debug messages)")
    noise.add_argument("-q", "--quiet", action="store_true",
                       help="only warnings, errors and the commands' results: no progress bars or progress lines")
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
    p.add_argument("--temporal", choices=("on", "off"), default="on",
                   help="the report's temporal measures of the output (default on; per face and frame ~3 ms for a "
                   "small face, ~5 ms for a 100-px face, ~18 ms for one at --upscale 4)")
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
    p.add_argument("--landmarks", type=Path, help="68-point landmark JSON of the HR faces: adds landmark NME and "
                   "each method's identity distance to the HR face (dlib's face descriptor; lower: the same person)")
    p.add_argument("--seed", action="store_true", help="also run DIC seeded with those landmarks (dic+seed)")
    p.add_argument("--lr-dir", type=Path, help="LR faces paired with the HR faces by file name (any extension); "
                   "default: LR made from HR by PIL bicubic as in training")
    codec = p.add_mutually_exclusive_group()
    codec.add_argument("--jpeg", type=_int_in(1, 100, "a JPEG quality"), metavar="Q",
                       help="round-trip each LR face through JPEG at quality Q (4:2:0) before both methods, as "
                       "compressed video degrades faces (default: none, DIC's protocol)")
    codec.add_argument("--h264", type=_int_in(0, 51, "an H.264 crf"), metavar="CRF",
                       help="the same through an H.264 intra frame (libx264, preset medium) at that crf")
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
    b.add_argument("--faces", default="astronaut",
                   help="face photos of the clips: astronaut (default), heldout (six faces never tuned on) or a "
                        "folder of face photos (a face from each of its first four)")
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
    p.add_argument("--detector", choices=DETECTORS, default="yunet",
                   help="face detector when there is no --tracks file (default yunet)")
    p.add_argument("--detector-model", type=Path, help="the insightface detector ONNX (e.g. SCRFD)")
    p.add_argument("--detect-scale", type=float, help="enlarge frames by this before detection")
    p.add_argument("--detect-every", type=positive_int, default=DetectConfig.every,
                   help=f"full-frame face search every N-th frame (default {DetectConfig.every})")

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

    p = sub.add_parser("export-weights", help="install a trained checkpoint with its card in your weights folder "
                       "(or --to DIR)", epilog=EPILOG)
    p.add_argument("checkpoint", help="best.pt / last.pt of a run, or any DIC state dict")
    p.add_argument("--name", required=True, help="weights name (file <name>.pt and card <name>.json)")
    p.add_argument("--to", type=Path, help="folder to write into (default: your weights folder, "
                   "$DICFACE_WEIGHTS_DIR or ~/.local/share/dicface/weights, searched before the package's; the project "
                   "ships a member with --to models/weights)")
    p.add_argument("--default", action="store_true",
                   help="make these the default member of their scale (in that folder)")
    p.add_argument("--metrics", action="append", metavar="[KEY=]FILE",
                   help="'dicface eval --json' output to record on the card: KEY=FILE files its table under KEY "
                        "(e.g. celeba_test_1000=clean.json celeba_test_1000_h264_crf26=h264.json); FILE alone "
                        "records the file as it is; repeatable")
    p.add_argument("--note", help="a line on the card's metrics (what they show, against what)")
    p.add_argument("--train-config", type=Path, help="the training YAML, recorded on the card")
    p.add_argument("--iterations", type=int, help="training iterations behind the checkpoint")
    p.add_argument("--what", help="one line on this training stage (where it started, what changed)")
    p.add_argument("--natural-of", metavar="NAME",
                   help="these are the natural-detail twin of the shipped member NAME (what --fidelity blends in)")
    p.add_argument("--append-stage", action="store_true",
                   help="the checkpoint continues the training of the weights now shipped as --name: keep their "
                        "card's stages and add this one (the metrics are the new weights' own)")

    sub.add_parser("models", help="list the weights shipped with the package")
    return parser
