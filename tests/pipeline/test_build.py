"""Runners from a run configuration (``pipeline.runtime.build``): every stage reads its section."""

from __future__ import annotations

from pathlib import Path

from dicface.configs.schema import EnhanceConfig, ModelConfig, RunConfig
from dicface.configs.video import AlignConfig, BlendConfig, DetectConfig, FusionConfig, TrackConfig
from dicface.pipeline.runtime.build import open_runner
from dicface.pipeline.runtime.local import LocalServices
from dicface.pipeline.runtime.plan import RunMode


def test_a_local_runner_is_built_from_each_section_of_the_configuration() -> None:
    fusion = FusionConfig(weight=0.5, frames=3, lookahead=1)
    cfg = RunConfig(detect=DetectConfig(every=3, gate=False, margin=0.5), track=TrackConfig(max_age=2),
                    align=AlignConfig(max_face_px=30.0), blend=BlendConfig(feather=0.2),
                    enhance=EnhanceConfig(window=3, feedback=True, fusion=fusion, scene_cuts=False, upscale=2.0))
    with open_runner(cfg, RunMode(sr=False, preview=True, measure=True)) as runner:
        seq = runner.sequencer
        assert isinstance(runner.services, LocalServices) and runner.services.enhancer is None
        assert runner.services.members == {} and seq.aligner.input_sizes == (16,)  # no DIC: no members loaded
        assert (seq.detector.cfg.every, seq.detector.cfg.gate, seq.detector.cfg.margin) == (3, False, 0.5)
        assert seq.track_cfg.max_age == 2 and seq.aligner.cfg.max_face_px == 30.0 and seq.blender.cfg.feather == 0.2
        assert (seq.enhance.window, seq.enhance.feedback, seq.enhance.scene_cuts, seq.enhance.upscale) == \
            (3, True, False, 2.0)
        assert seq.enhance.fusion.delay == 1 and seq.mode == RunMode(sr=False, preview=True, measure=True)
        assert runner.usage() == {} and runner.queue_line() == ""


def test_a_runner_with_dic_routes_to_the_members_it_loaded(tiny_weights: Path) -> None:
    with open_runner(RunConfig(model=ModelConfig(weights=str(tiny_weights)))) as runner:
        assert runner.services.enhancer is not None
        assert runner.sequencer.aligner.input_sizes == runner.services.enhancer.input_sizes
        configs = runner.services.enhancer.configs
        assert runner.sequencer.aligner.frames == {size: c.frames for size, c in configs.items()}
        assert runner.sequencer.member_names == {size: c.name for size, c in configs.items()}
