"""The ``dicface`` argument parser: every command and flag. The flags of the run configuration are declared beside
the keys they set (``configs.flags``: name, help, parsing); they default to "not given" (None) and show the
dataclasses' defaults in their help."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Literal, get_args, get_origin

from dicface.configs.flags import flag_fields, positive_int, switch
from dicface.configs.schema import RunConfig

EPILOG = ("Exit codes: 0 ok, 1 error (or some videos of a job failed), 2 bad input, 3 weights problem, "
          "5 output cannot be written, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM). --debug shows tracebacks.")


def _int_in(low: int, high: int, what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {what} from {low} to {high}, got {text}")
        return value

    parse.__name__ = "integer"  # argparse's message for a non-number: "invalid integer value"
    return parse


def _parse_options(hint: object) -> dict[str, object]:
    """argparse's ``type`` and ``choices`` for a configuration key of type ``hint`` (bool: on | off)."""
    args = [a for a in get_args(hint) if a is not type(None)]
    if hint is bool:
        return {"type": switch, "metavar": "{on,off}"}
    if get_origin(hint) is Literal or (args and get_origin(args[0]) is Literal):
        choices = get_args(hint) if get_origin(hint) is Literal else get_args(args[0])
        return {"type": type(choices[0]), "choices": choices}
    base = args[0] if args else hint
    return {"type": base if base in (int, float) else str}


def _shown(value: object) -> str:
    return ("on" if value else "off") if isinstance(value, bool) else f"{value:g}" if isinstance(value, float) \
        else str(value)


def add_config_flags(p: argparse.ArgumentParser | argparse._ArgumentGroup, *sections: str,
                     skip: tuple[str, ...] = ()) -> None:
    """The flags of the run configuration's keys under ``sections`` (dotted prefixes), as declared beside the keys
    (``configs.flags``), but those in ``skip``. Each defaults to "not given" (None: the file's or the dataclass's
    value holds; ``common.run_config``) and its help ends with the key's default."""
    for path, f, hint in flag_fields(RunConfig):
        if path in skip or not any(path == s or path.startswith(f"{s}.") for s in sections):
            continue
        meta = dict(f.metadata)
        name, text = meta.pop("flag"), meta.pop("help")
        options = meta if ("type" in meta or "action" in meta) else _parse_options(hint) | meta
        if "choices" not in options and "action" not in options:
            options.setdefault("metavar", name.removeprefix("--").replace("-", "_").upper())
        default = f.default
        suffix = "" if default is None or "default" in text or meta.get("action") else f" (default {_shown(default)})"
        p.add_argument(name, dest=f"config:{path}", default=None, help=text + suffix, **options)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="YAML configuration (default: configs/default.yaml)")
    add_config_flags(p, "model", "inference", skip=("inference.compile",))
    p.add_argument("--threads", type=positive_int,
                   help="CPU threads for DIC on torch or OpenVINO (default: torch's choice)")


VIDEO_SECTIONS = ("detect", "align", "enhance", "encode")  # the flags of enhance, stream and the benchmarks


def _add_runtime_flags(p: argparse.ArgumentParser) -> None:
    """Where the stages run: in this process, or on Ray actor pools (this machine or a cluster)."""
    add_config_flags(p.add_argument_group("runtime"), "runtime", skip=("runtime.split",))


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
    add_config_flags(p, *VIDEO_SECTIONS)
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
    add_config_flags(p.add_argument_group("runtime"), "runtime.split")

    p = sub.add_parser("stream", help="super-resolve the faces of a live stream (RTSP): out to an RTSP server, "
                       "a file or a folder of segments", epilog=EPILOG)
    p.add_argument("input", help="stream URL (rtsp://HOST:PORT/PATH; with --listen, the address to listen on)")
    p.add_argument("-o", "--output", required=True,
                   help="rtsp://HOST:PORT/PATH (pushed to that server), a video file (written when the stream "
                        "stops), or a folder (one file per --segment-seconds)")
    add_config_flags(p, *VIDEO_SECTIONS)
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
    add_config_flags(b, "inference.compile")
    _add_common(b)
    b = bench.add_parser("pipeline", help="frames/s of enhance (with and without SR) vs plain decode+encode, and "
                         "DIC's faces/s in the pipeline vs alone")
    b.add_argument("input", nargs="?", type=Path,
                   help="video to measure (default: generated 1280x720 and 1920x1080 clips of 3 real faces, "
                        "18-22 px, and a 1920x1080 clip of two 100-px heads)")
    b.add_argument("--frames", type=positive_int, default=100, help="length of the generated clip (default 100)")
    add_config_flags(b, *VIDEO_SECTIONS)
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
    b.add_argument("--motion", choices=("pan", "talking"), default="pan",
                   help="pan: still photos moving over a panning scene (default); talking: the same, each face "
                        "also talking, blinking and turning (landmark-driven warps of its photo)")
    add_config_flags(b, *VIDEO_SECTIONS)
    _add_common(b)
    b.set_defaults(**{"config:enhance.upscale": 4.0})

    p = sub.add_parser("eval-video", help="temporal stability of an output against its input, no ground truth "
                       "needed: warping error, appearance change and landmark jitter per face track", epilog=EPILOG)
    p.add_argument("input", type=Path, help="the original video")
    p.add_argument("output", type=Path, help="the enhanced video (any upscale of the input, same frames)")
    p.add_argument("--tracks", type=Path, help="the --tracks file of the run that made OUTPUT (default: find and "
                   "track the faces in INPUT)")
    p.add_argument("--plot", type=Path, help="PNG of the measures per track over time")
    p.add_argument("--json", type=Path, help="write the measures as JSON")
    add_config_flags(p, "detect", skip=("detect.gate",))  # where there is no --tracks file

    p = sub.add_parser("config", help="print the run configuration that --config and the flags make, as YAML "
                       "(every key, defaults included)", epilog=EPILOG)
    add_config_flags(p, *VIDEO_SECTIONS)
    _add_common(p)
    _add_runtime_flags(p)
    add_config_flags(p, "runtime.split")

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
