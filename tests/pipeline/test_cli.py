"""The image CLI as a user runs it, on real face photos (scikit-image) and, where present, CelebA test faces."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dicface.models.imageio import write_png
from dicface.pipeline.cli import main


@pytest.fixture
def face_dir(tmp_path: Path, real_faces: list[np.ndarray]) -> Path:
    folder = tmp_path / "faces"
    folder.mkdir()
    for i, face in enumerate(real_faces):
        write_png(face, folder / f"face{i}.png")
    return folder


def test_help_lists_and_explains_every_subcommand() -> None:
    from dicface.pipeline.cli import COMMANDS

    def help_text(*argv: str) -> str:
        return subprocess.run([sys.executable, "-m", "dicface.pipeline.cli", *argv, "--help"], capture_output=True,
                              text=True, check=True).stdout

    top = help_text()
    for command in COMMANDS:
        assert command in top
        assert f"usage: dicface {command}" in help_text(command) and "Exit codes" in top
    for target in ("model", "pipeline", "quality"):
        assert f"usage: dicface bench {target}" in help_text("bench", target)


def test_sr_writes_128px_faces_and_landmark_overlays(face_dir: Path, tmp_path: Path, tiny_weights: Path) -> None:
    out = tmp_path / "out"
    assert main(["sr", str(face_dir), "-o", str(out), "--weights", str(tiny_weights), "--landmarks"]) == 0
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted([f"face{i}.png" for i in range(4)] + [f"face{i}_landmarks.png" for i in range(4)])
    assert Image.open(out / "face0.png").size == (128, 128)
    assert Image.open(out / "face0_landmarks.png").size == (256, 256)


def test_eval_prints_a_table_against_bicubic(
    face_dir: Path, tmp_path: Path, tiny_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "eval.json"
    assert main(["eval", str(face_dir), "--weights", str(tiny_weights), "--json", str(report)]) == 0
    text = capsys.readouterr().out
    assert "| bicubic |" in text and "| dic |" in text and "4 faces" in text
    rows = json.loads(report.read_text())["results"]
    assert rows[0]["nme"] is None
    assert [r["method"] for r in rows] == ["bicubic", "dic"] and all(r["faces"] == 4 for r in rows)


def test_eval_through_a_codec_degrades_both_methods_from_the_same_lr(
    face_dir: Path, tmp_path: Path, tiny_weights: Path
) -> None:
    runs = {}
    for name, extra in (("clean", []), ("jpeg", ["--jpeg", "30"]), ("h264", ["--h264", "34"])):
        report = tmp_path / f"{name}.json"
        assert main(["eval", str(face_dir), "--weights", str(tiny_weights), "--json", str(report), *extra]) == 0
        runs[name] = json.loads(report.read_text())
    assert runs["jpeg"]["jpeg"] == 30 and runs["h264"]["h264"] == 34
    assert runs["clean"]["jpeg"] is None and runs["clean"]["h264"] is None
    psnr = {name: {r["method"]: r["psnr_y"] for r in run["results"]} for name, run in runs.items()}
    for coded in ("jpeg", "h264"):
        assert psnr[coded]["bicubic"] < psnr["clean"]["bicubic"] - 0.1 and psnr[coded]["dic"] != psnr["clean"]["dic"]
    for bad in (["--jpeg", "0"], ["--h264", "52"], ["--jpeg", "50", "--h264", "20"]):
        with pytest.raises(SystemExit) as exit_info:
            main(["eval", str(face_dir), "--weights", str(tiny_weights), *bad])
        assert exit_info.value.code == 2


def test_eval_on_lr_hr_pairs(face_dir: Path, tmp_path: Path, tiny_weights: Path) -> None:
    from dicface.models.faces import hr_and_lr

    lr_dir = tmp_path / "lr"
    lr_dir.mkdir()
    for path in sorted(face_dir.iterdir()):
        write_png(hr_and_lr(np.asarray(Image.open(path).convert("RGB")))[1], lr_dir / f"{path.stem}.png")
    runs = {}
    for name, extra in (("derived", []), ("pairs", ["--lr-dir", str(lr_dir)])):
        report = tmp_path / f"{name}.json"
        assert main(["eval", str(face_dir), "--weights", str(tiny_weights), "--json", str(report), *extra]) == 0
        runs[name] = json.loads(report.read_text())["results"]
    assert runs["pairs"] == runs["derived"]  # the same LR faces as the protocol makes: the same scores
    (lr_dir / "face0.png").unlink()
    assert main(["eval", str(face_dir), "--weights", str(tiny_weights), "--lr-dir", str(lr_dir)]) == 2


def test_eval_with_landmarks_scores_nme_and_seeding(
    tmp_path: Path, tiny_weights: Path, real_faces: list[np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    from dicface.pipeline.detect.dlib_backend import DlibDetector

    folder = tmp_path / "hr"
    folder.mkdir()
    face = real_faces[0]  # the astronaut, 130 px: dlib finds it
    write_png(face, folder / "astronaut.png")
    landmarks = tmp_path / "landmarks.json"
    landmarks.write_text(json.dumps({"astronaut.png": DlibDetector(upsample=1)(face)[0].landmarks.tolist()}))
    report = tmp_path / "eval.json"
    argv = ["eval", str(folder), "--weights", str(tiny_weights), "--landmarks", str(landmarks), "--seed",
            "--json", str(report), "--markdown", str(tmp_path / "eval.md")]
    assert main(argv) == 0
    rows = {r["method"]: r for r in json.loads(report.read_text())["results"]}
    assert set(rows) == {"bicubic", "dic", "dic+seed"}
    assert rows["bicubic"]["nme"] is None and rows["dic"]["nme"] > 0 and rows["dic+seed"]["nme"] > 0
    assert "| dic+seed |" in (tmp_path / "eval.md").read_text()
    # the viewer's measures: detail against the truth's, GMSD, and identity where landmarks are known
    assert all(r["detail"] > 0 and 0 < r["gmsd"] < 1 and 0 < r["identity"] < 2 for r in rows.values())


def test_eval_on_celeba_test_faces(
    celeba_test_dir: Path, tiny_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", str(celeba_test_dir), "--weights", str(tiny_weights), "--limit", "8"]) == 0
    assert "8 faces" in capsys.readouterr().out


def test_demo_writes_the_comparison_sheet(tmp_path: Path, tiny_weights: Path) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out), "--weights", str(tiny_weights), "--no-video"]) == 0
    sheet = np.asarray(Image.open(out / "comparison.png"))
    assert sheet.shape == (7 * 128, 3 * 128 + 8, 3)


def test_bench_model_reports_every_path(tiny_weights: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "model", "--weights", str(tiny_weights), "--batch", "2", "--iters", "1",
                 "--precision", "fp32"]) == 0
    out = capsys.readouterr().out
    assert "batch 2" in out and "threads" in out
    lines = [line for line in out.splitlines() if "faces/s" in line]
    assert [line.split(" (")[0] for line in lines] == ["plain", "fast", "fast"]
    assert "(torch, fp32, channels-last)" in lines[1] and "(openvino, fp32)" in lines[2]
    assert lines[0].split()[-6] == "1.00x"  # each path's speed over the plain path's
    assert all(float(line.split()[-1]) < 1e-3 for line in lines)  # fp32: the same faces on every path
    from dicface.models.inference import cpu_summary

    assert f"({cpu_summary()})" in out  # figures name the CPU, its ISA, native bf16 and AMX


@pytest.mark.parametrize(
    "argv_tail,code,message",
    [
        (["sr", "/no/such/face.png", "-o", "OUT"], 2, "no such file"),
        (["sr", "FACES", "-o", "OUT", "--weights", "/no/such.pth"], 2, "weights file not found"),
        (["sr", "FACES", "-o", "OUT", "--weights", "BADWEIGHTS"], 3, "not a readable PyTorch weights file"),
        (["sr", "FACES", "-o", "OUT", "--config", "BADCONFIG"], 2, "unknown key 'bogus'"),
    ],
)
def test_errors_are_one_line_with_documented_exit_codes(
    tmp_path: Path, face_dir: Path, capsys: pytest.CaptureFixture[str], argv_tail: list[str], code: int, message: str
) -> None:
    bad_weights = tmp_path / "bad.pth"
    bad_weights.write_text("hello")
    bad_config = tmp_path / "bad.yaml"
    bad_config.write_text("inference:\n  bogus: 1\n")
    subs = {"OUT": str(tmp_path / "o"), "FACES": str(face_dir), "BADWEIGHTS": str(bad_weights),
            "BADCONFIG": str(bad_config)}
    assert main([subs.get(a, a) for a in argv_tail]) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("dicface: error:") and message in err[-1]
    assert "Traceback" not in "\n".join(err)


def test_missing_default_weights_say_what_to_do(
    face_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import dicface.models.registry as registry
    monkeypatch.setattr(registry, "WEIGHTS_DIR", tmp_path / "empty")
    assert main(["sr", str(face_dir), "-o", str(tmp_path / "o")]) == 3
    assert "no default x8 DIC weights are installed" in capsys.readouterr().err


def test_unreadable_input_is_named_and_leaves_no_partial_files(
    tmp_path: Path, face_dir: Path, tiny_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (face_dir / "zz_broken.png").write_bytes(b"\x89PNG broken")
    out = tmp_path / "o"
    assert main(["sr", str(face_dir), "-o", str(out), "--weights", str(tiny_weights), "--batch", "2"]) == 2
    assert "zz_broken.png: not a readable image" in capsys.readouterr().err
    assert not [p for p in out.iterdir() if ".part" in p.name]


def test_export_weights_files_each_eval_table_under_its_key(
    face_dir: Path, tmp_path: Path, tiny_weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dicface.models import registry

    report = tmp_path / "eval.json"
    assert main(["eval", str(face_dir), "--weights", str(tiny_weights), "--json", str(report)]) == 0
    seen = {}
    monkeypatch.setattr(registry, "export_weights",
                        lambda *args, **kwargs: seen.update(kwargs) or registry.WeightsRecord.from_card(
                            next(registry.WEIGHTS_DIR.glob("*.json"))))
    assert main(["export-weights", str(tiny_weights), "--name", "m", "--metrics", f"faces_4={report}",
                 "--note", "a note", "--what", "a stage", "--iterations", "5", "--append-stage"]) == 0
    rows = json.loads(report.read_text())["results"]
    assert seen["metrics"] == {"protocol": "DIC: Y (BT.601), 8-px crop, Gaussian SSIM; LR = PIL bicubic 128->16 of "
                                           "each HR face", "faces_4": rows, "note": "a note"}
    assert seen["training"] == {"iterations": 5, "what": "a stage"} and seen["append_stage"]


def test_export_weights_installs_into_the_users_folder_searched_first(
    tmp_path: Path, tiny_weights: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from dicface.models.registry import WEIGHTS_DIR, default_weights, family, list_weights

    shipped = sorted(p.name for p in WEIGHTS_DIR.iterdir())
    monkeypatch.setenv("DICFACE_WEIGHTS_DIR", str(tmp_path / "mine"))
    package_x8 = default_weights(scale=8)
    assert main(["export-weights", str(tiny_weights), "--name", "my-x8", "--default"]) == 0
    assert str(tmp_path / "mine" / "my-x8.pt") in capsys.readouterr().out
    assert sorted(p.name for p in WEIGHTS_DIR.iterdir()) == shipped  # the installed package is never written
    assert default_weights(scale=8).name == "my-x8"  # the user's default of a scale wins
    assert family()[0].name == "my-x8" and len(family()) == len(family(folder=WEIGHTS_DIR))
    marked = {r.name: r.default for r in list_weights()}
    assert marked["my-x8"] and not marked[package_x8.name]  # one default per scale
    assert main(["models"]) == 0 and "my-x8 (default x8)" in capsys.readouterr().out
    (tmp_path / "mine" / "my-x8.pt").unlink()  # a card whose weights are gone does not hide the package's default
    assert default_weights(scale=8).name == package_x8.name
    assert main(["export-weights", str(tiny_weights), "--name", "other", "--to", str(tmp_path / "elsewhere")]) == 0
    assert (tmp_path / "elsewhere" / "other.json").is_file() and "other" not in {r.name for r in list_weights()}


def test_verbose_and_quiet_decide_what_the_library_says(
    face_dir: Path, tmp_path: Path, tiny_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["sr", str(face_dir), "-o", str(tmp_path / "out"), "--weights", str(tiny_weights), "--backend", "openvino"]
    assert main(argv) == 0
    said = capsys.readouterr().err
    assert "weights: tiny (x8)" in said and "OpenVINO network read from" not in said  # INFO, not DEBUG
    assert main(["-v", *argv, "--batch", "3"]) == 0  # other options: a resolver of its own, its network
    assert "OpenVINO network read from" in capsys.readouterr().err  # converted above, from the disk cache
    assert main(["-q", *argv]) == 0
    quiet = capsys.readouterr().err
    assert "weights:" not in quiet and "face/s" not in quiet and "it/s" not in quiet  # no progress lines or bars
    assert main(argv) == 0 and "weights:" in capsys.readouterr().err  # the next run is as loud as asked


# Flags whose effect a short run cannot show (no scene cut in the clip; the same faces on every device, backend or
# batch): each reaches the object that acts on it.
RUNNER_FLAGS = [
    (["--scene-cuts", "off"], lambda r: r.sequencer.enhance.scene_cuts is False),
    (["--batch", "3"], lambda r: all(m.options.max_batch == 3 for m in r.services.enhancer.resolvers.values())),
    (["--precision", "fp32"], lambda r: all(m.precision == "fp32" for m in r.services.enhancer.resolvers.values())),
    (["--backend", "torch"], lambda r: all(m.backend == "torch" for m in r.services.enhancer.resolvers.values())),
    (["--device", "cpu"], lambda r: all(m.device.type == "cpu" for m in r.services.enhancer.resolvers.values())),
    (["--seed", "none"], lambda r: r.services.enhancer.seed == "none"),
    (["--feedback", "on"], lambda r: r.sequencer.enhance.feedback is True),
    (["--detect-every", "7"], lambda r: r.sequencer.detector.is_full(14) and not r.sequencer.detector.is_full(10)),
]


@pytest.mark.parametrize(("flags", "acts"), RUNNER_FLAGS)
def test_each_run_flag_reaches_the_stage_that_acts_on_it(tmp_path: Path, tiny_weights: Path, flags: list[str],
                                                         acts) -> None:
    from dicface.pipeline.cli import build_parser
    from dicface.pipeline.cli.common import open_run, run_config
    from dicface.pipeline.runtime.plan import plan_run

    args = build_parser().parse_args(["enhance", "in.mp4", "-o", str(tmp_path / "o.mp4"), "--weights",
                                      str(tiny_weights), *flags])
    cfg = run_config(args)
    with open_run(args, cfg, plan_run(cfg, "in.mp4", args.output)) as runner:
        assert acts(runner)


def test_runtime_flags_set_the_runtime_section() -> None:
    from dicface.pipeline.cli import build_parser
    from dicface.pipeline.cli.common import run_config

    args = build_parser().parse_args(["enhance", "in.mp4", "-o", "o.mp4", "--runtime", "ray", "--address", "h:1",
                                      "--workers", "3", "--streams", "4", "--max-wait-ms", "5", "--cpus-per-actor",
                                      "2", "--gpus-per-actor", "0.5", "--dic-resources", '{"g": 1}', "--split", "2"])
    r = run_config(args).runtime
    assert (r.runtime, r.address, r.workers, r.streams, r.max_wait_ms, r.cpus_per_actor, r.gpus_per_actor,
            r.dic_resources, r.split) == ("ray", "h:1", 3, 4, 5.0, 2.0, 0.5, {"g": 1.0}, 2)
