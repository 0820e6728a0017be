"""PyAV source and sink: frames, timestamps, audio and rotation survive a decode -> encode round trip."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from dicface.configs.video import EncodeOptions
from dicface.models.errors import InputError, InputNotFound
from dicface.models.imageio import write_png
from dicface.pipeline.colour import EXACT_CONVERSION, HdrMetadata
from dicface.pipeline.sink import VideoSink
from dicface.pipeline.source import FileSource, ImageFolderSource, StreamInfo, open_source
from dicface.pipeline.types import Frame
from tests.clips import make_clip, make_two_angle_clip


def _copy(src_path: Path, dst_path: Path) -> FileSource:
    with FileSource(src_path) as source, VideoSink(dst_path, source.info, source.copy_streams) as sink:
        for frame in source:
            sink.write_packets(source.take_packets())
            sink.write(frame)
        sink.write_packets(source.take_packets())
    return source


def _probe(path: Path) -> tuple[list[float], list[bytes], int]:
    with av.open(str(path)) as c:
        times = [float(f.time) for f in c.decode(video=0)]
    with av.open(str(path)) as c:
        audio = [bytes(p) for p in c.demux(audio=0) if p.dts is not None] if c.streams.audio else []
    with av.open(str(path)) as c:
        rotation = next(c.decode(video=0)).rotation
    return times, audio, rotation


def test_round_trip_keeps_every_frame_timestamps_and_audio(tmp_path: Path) -> None:
    src, dst = tmp_path / "in.mp4", tmp_path / "out.mp4"
    make_clip(src, count=30)
    _copy(src, dst)
    times_in, audio_in, _ = _probe(src)
    times_out, audio_out, _ = _probe(dst)
    assert len(times_out) == len(times_in) == 30  # the encoder's delayed last frames were flushed
    assert times_out == pytest.approx(times_in, abs=1e-3)
    assert audio_out == audio_in and len(audio_in) > 30  # remuxed untouched
    assert [p.name for p in tmp_path.iterdir() if ".part" in p.name] == []


def test_pixels_survive_within_codec_loss(tmp_path: Path) -> None:
    src = tmp_path / "in.mp4"
    frames = make_clip(src, count=5, audio=False)
    with FileSource(src) as source:
        decoded = [f.image for f in source]
    assert source.info.width == 320 and source.info.height == 240 and source.info.fps == 25
    assert np.mean(np.abs(decoded[2].astype(int) - frames[2])) < 4


def test_variable_frame_rate_timestamps_are_kept(tmp_path: Path) -> None:
    src, dst = tmp_path / "vfr.mp4", tmp_path / "out.mp4"
    pts = [0, 1, 2, 5, 6, 10, 11, 12, 20, 21]
    make_clip(src, count=len(pts), pts=pts, audio=False)
    _copy(src, dst)
    assert _probe(dst)[0] == pytest.approx([p / 25 for p in pts], abs=1e-3)


def test_rotation_metadata_is_kept(tmp_path: Path) -> None:
    src, dst = tmp_path / "phone.mp4", tmp_path / "out.mp4"
    make_clip(src, count=4, audio=False, rotation=90)
    source = _copy(src, dst)
    assert source.info.rotation == 90 and _probe(dst)[2] == 90


def test_odd_sizes_are_padded_to_even(tmp_path: Path) -> None:
    dst = tmp_path / "odd.mp4"
    stream = StreamInfo(47, 33, Fraction(25), Fraction(1, 25), 0, 3, False)
    with VideoSink(dst, stream) as sink:
        for i in range(3):
            sink.write(Frame(i, i, Fraction(1, 25), np.full((33, 47, 3), 100, np.uint8)))
    with FileSource(dst) as source:
        out = [f.image for f in source]
    assert len(out) == 3 and out[0].shape == (34, 48, 3)
    assert np.abs(out[0][:33, :47].astype(int) - 100).max() <= 2


def test_failed_encode_leaves_nothing(tmp_path: Path) -> None:
    src = tmp_path / "in.mp4"
    make_clip(src, count=3, audio=False)
    dst = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError), FileSource(src) as source, VideoSink(dst, source.info) as sink:
        for frame in source:
            sink.write(frame)
            raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_image_folder_source(tmp_path: Path) -> None:
    for i in range(3):
        write_png(np.full((20, 30, 3), i * 50, np.uint8), tmp_path / f"f{i:03d}.png")
    source = open_source(tmp_path)
    assert isinstance(source, ImageFolderSource)
    frames = list(source)
    assert [f.index for f in frames] == [0, 1, 2] and frames[2].image[0, 0, 0] == 100
    assert source.info.width == 30 and source.info.height == 20


@pytest.mark.parametrize(
    "content,error,message",
    [
        (None, InputNotFound, "no such file"),
        (b"", InputError, "empty file"),
        (b"hello, not a video\n" * 10, InputError, "not a readable video"),
    ],
)
def test_bad_inputs_are_clear_errors(tmp_path: Path, content: bytes | None, error: type, message: str) -> None:
    path = tmp_path / "clip.mp4"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(error, match=message):
        FileSource(path)


def test_audio_only_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sound.m4a"
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=48000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 48000, 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode())
    with pytest.raises(InputError, match="no video stream"):
        FileSource(path)


def _tagged(path: Path, pix_fmt: str, tags: tuple[int, int, int, int] | None, rgb: tuple[int, int, int],
            size: tuple[int, int] = (64, 48)) -> None:
    """Three lossless frames of one flat colour, converted and tagged as ``tags`` (primaries, transfer, matrix,
    range) say; None: untagged (converted as FFmpeg does by default)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = *size, pix_fmt
        stream.codec_context.options = {"qp": "0"}
        if tags:
            context = stream.codec_context
            context.color_primaries, context.color_trc, context.colorspace, context.color_range = tags
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(np.full((size[1], size[0], 3), rgb, np.uint8), format="rgb24")
            if tags:
                frame.color_primaries, frame.color_trc = tags[:2]  # tags only: no gamut conversion
                frame = frame.reformat(format=pix_fmt, dst_colorspace=tags[2], dst_color_range=tags[3],
                                       interpolation=EXACT_CONVERSION)
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode())


def _colour_and_tags(path: Path) -> tuple[np.ndarray, tuple[int, int, int, int], str]:
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        tags = (frame.color_primaries, frame.color_trc, frame.colorspace, frame.color_range)
        matrix = frame.colorspace if frame.colorspace != 2 else 6
        rgb = frame.to_ndarray(format="rgb24", src_colorspace=matrix, src_color_range=frame.color_range or 1,
                               interpolation=EXACT_CONVERSION)
        return rgb[24, 32].astype(int), tags, frame.format.name


@pytest.mark.parametrize(("name", "pix_fmt", "tags"), [
    ("BT.709 limited", "yuv420p", (1, 1, 1, 1)),
    ("BT.601 full range", "yuv420p", (6, 6, 6, 2)),
    ("BT.2020 10-bit", "yuv420p10le", (9, 14, 9, 1)),
    ("4:4:4", "yuv444p", (1, 1, 1, 1)),
])
def test_colour_tags_matrix_range_and_bit_depth_come_through(tmp_path: Path, name: str, pix_fmt: str,
                                                             tags: tuple[int, int, int, int]) -> None:
    src, out = tmp_path / "in.mkv", tmp_path / "out.mkv"
    _tagged(src, pix_fmt, tags, (200, 100, 50))
    before, before_tags, _ = _colour_and_tags(src)
    lossless = EncodeOptions(crf=0, preset="ultrafast")
    with FileSource(src) as source, VideoSink(out, source.info, options=lossless) as sink:
        for frame in source:
            sink.write(frame)
    after, after_tags, after_fmt = _colour_and_tags(out)
    assert after_tags == before_tags == tags and after_fmt.replace("yuvj", "yuv") == pix_fmt  # yuvj: full range
    assert np.abs(after - before).max() <= 1, (before, after)  # a flat patch within one level


def test_untagged_video_follows_ffmpegs_convention_by_height(tmp_path: Path) -> None:
    from dicface.pipeline.colour import ColorTags

    assert ColorTags().resolved(720).matrix == 1 and ColorTags().resolved(576).matrix == 6
    assert ColorTags(pix_fmt="yuvj420p").resolved(480).range == 2 and ColorTags().resolved(480).range == 1
    src, out = tmp_path / "in.mp4", tmp_path / "out.mp4"
    _tagged(src, "yuv420p", None, (200, 100, 50))
    lossless = EncodeOptions(crf=0, pix_fmt="yuv420p")
    with FileSource(src) as source, VideoSink(out, source.info, options=lossless) as sink:
        for frame in source:
            sink.write(frame)
    _, tags, _ = _colour_and_tags(out)
    assert tags[2:] == (6, 1)  # a 48-line video: BT.601, limited range, now said in the file


def test_an_explicit_pixel_format_is_used(tmp_path: Path) -> None:
    src, out = tmp_path / "in.mkv", tmp_path / "out.mkv"
    _tagged(src, "yuv420p10le", (1, 1, 1, 1), (10, 200, 90))
    with FileSource(src) as source, VideoSink(out, source.info, options=EncodeOptions(pix_fmt="yuv420p")) as sink:
        for frame in source:
            sink.write(frame)
    assert _colour_and_tags(out)[2] == "yuv420p"


MASTERING = "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,50)"


def _hdr10(path: Path) -> None:
    """Three 10-bit BT.2020 PQ frames from x265 with HDR10 mastering display and content light level metadata."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx265", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p10le"
        context = stream.codec_context
        context.color_primaries, context.color_trc, context.colorspace, context.color_range = 9, 16, 9, 1
        context.options = {"x265-params": f"log-level=error:master-display={MASTERING}:max-cll=1000,400"}
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), (180, 90, 40), np.uint8), format="rgb24")
            frame = frame.reformat(format="yuv420p10le", dst_colorspace=9, dst_color_range=1)
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode())


def test_hdr10_metadata_comes_through_with_x265_and_is_named_where_it_cannot(tmp_path: Path) -> None:
    src = tmp_path / "hdr.mkv"
    _hdr10(src)
    results = {}
    for codec in ("libx265", "libx264"):
        out = tmp_path / f"{codec}.mkv"
        with FileSource(src) as source, VideoSink(out, source.info, options=EncodeOptions(codec=codec)) as sink:
            assert source.info.hdr is not None
            for frame in source:
                sink.write(frame)
        with av.open(str(out)) as container:
            results[codec] = (HdrMetadata.of(next(container.decode(video=0))), sink.dropped_streams)
    expected = HdrMetadata((13250, 34500, 7500, 3000, 34000, 16000, 15635, 16450, 10000000, 50), (1000, 400))
    assert source.info.hdr == expected and results["libx265"] == (expected, [])
    assert results["libx264"][0] is None and "HDR10" in results["libx264"][1][0]


def test_timecode_is_kept_and_streams_no_output_carries_are_named(tmp_path: Path) -> None:
    src = tmp_path / "in.mov"
    make_two_angle_clip(src)
    out_path = tmp_path / "out.mov"
    with FileSource(src) as source, VideoSink(out_path, source.info, source.copy_streams) as sink:
        for frame in source:
            sink.write(frame)
    assert sink.dropped_streams == ["video stream #1 (mjpeg)"]  # the timecode track (#2) is not in the list
    with av.open(str(out_path)) as container:
        timecodes = [s.metadata.get("timecode") for s in container.streams]
        assert [s.type for s in container.streams] == ["video", "data"]  # the muxer wrote the timecode track
    assert timecodes == ["01:02:03:04", "01:02:03:04"]


def _ten_bit_planes(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        assert frame.format.name == "yuv420p10le"
        return frame.to_ndarray().astype(int)  # (H * 3/2, W) 10-bit codes, planar


def test_a_10_bit_input_is_not_rounded_to_8_bits_outside_the_faces(tmp_path: Path) -> None:
    from dicface.configs.schema import RunConfig
    from dicface.pipeline.job import enhance_file
    from dicface.pipeline.runtime.build import open_runner
    from dicface.pipeline.runtime.plan import RunMode

    src = tmp_path / "in.mkv"
    ramp = np.linspace(64, 940, 128 * 96).reshape(96, 128).astype(np.uint16)  # every 10-bit code, not 8-bit ones
    with av.open(str(src), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 128, 64, "yuv420p10le"
        stream.codec_context.options = {"qp": "0"}
        context = stream.codec_context
        context.color_primaries, context.color_trc, context.colorspace, context.color_range = 1, 1, 1, 1
        planes = np.concatenate([ramp[:64], np.full((32, 128), 512, np.uint16)])  # Y ramp, grey chroma
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(planes, format="yuv420p10le")
            frame.colorspace, frame.color_range, frame.pts = 1, 1, i
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    runner = open_runner(RunConfig(), RunMode(sr=False))
    out_path = tmp_path / "out.mkv"
    enhance_file(src, out_path, runner, EncodeOptions(crf=0, preset="ultrafast"))
    before, after = _ten_bit_planes(src), _ten_bit_planes(out_path)
    assert np.abs(after - before).max() <= 1  # through RGB at 16 bits: the codes, not 8-bit levels (4 codes)
    eight_bit = (before[:64] / 4).round() * 4  # what an 8-bit path keeps at best
    assert np.abs(eight_bit - before[:64]).max() >= 2


def test_faces_are_pasted_into_a_deep_frame_at_its_precision() -> None:
    from dicface.pipeline.blend import Blender, PasteFace

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (40, 60, 3), np.uint8)
    face = PasteFace((10.3, 5.7, 34.3, 29.7), rng.integers(0, 256, (128, 128, 3), np.uint8))
    shallow = Blender()(image, [face], 2.0).astype(int)
    deep = Blender()(image.astype(np.uint16) * 257, [face], 2.0)
    assert deep.dtype == np.uint16 and deep.shape == shallow.shape
    inside = np.s_[20:50, 30:60]  # well inside the face box (x2): the face's pixels, 257 units per level
    assert np.abs(deep[inside] / 257 - shallow[inside]).max() <= 1


def _rich(path: Path) -> None:
    """Video, two audio tracks (eng, fra), SubRip subtitles, a title and two chapters: what a recording may hold."""
    with av.open(str(path), "w") as out:
        out.metadata["title"] = "my recording"
        video = out.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        tracks = [out.add_stream("aac", rate=48000, layout="mono") for _ in range(2)]
        for track, language in zip(tracks, ("eng", "fra"), strict=True):
            track.metadata["language"] = language
        subtitles = out.add_mux_stream("subrip")
        subtitles.metadata["language"] = "eng"
        out.set_chapters([{"id": i + 1, "start": 10 * i, "end": 10 * (i + 1), "time_base": Fraction(1, 25),
                           "metadata": {"title": name}} for i, name in enumerate(("one", "two"))])
        for i in range(20):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 10 * i, np.uint8), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 25)
            out.mux(video.encode(frame))
        out.mux(video.encode())
        for track in tracks:
            for start in range(0, 48000 * 20 // 25, 1024):
                sound = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
                sound.sample_rate, sound.pts, sound.time_base = 48000, start, Fraction(1, 48000)
                out.mux(track.encode(sound))
            out.mux(track.encode())
        for i, text in enumerate((b"Hello", b"World")):
            packet = av.Packet(text)
            packet.stream, packet.pts, packet.dts, packet.duration = subtitles, 400 * i, 400 * i, 300
            packet.time_base = Fraction(1, 1000)
            out.mux(packet)


def _contents(path: Path) -> dict[str, object]:
    with av.open(str(path)) as c:
        streams = [(s.type, s.metadata.get("language")) for s in c.streams]
        chapters = [(round(float(ch["start"] * ch["time_base"]), 3), ch["metadata"].get("title"))
                    for ch in c.chapters()]
        counts = {s.index: 0 for s in c.streams}
        for packet in c.demux():
            counts[packet.stream.index] += packet.size > 0
        return {"title": c.metadata.get("title"), "streams": streams, "chapters": chapters,
                "packets": [counts[i] for i in sorted(counts) if i > 0]}


def test_every_audio_and_subtitle_stream_metadata_and_chapters_come_through(tmp_path: Path) -> None:
    src, out = tmp_path / "in.mkv", tmp_path / "out.mkv"
    _rich(src)
    _copy(src, out)
    before, after = _contents(src), _contents(out)
    assert after == before and before["streams"] == [("video", None), ("audio", "eng"), ("audio", "fra"),
                                                      ("subtitle", "eng")]
    assert before["title"] == "my recording" and [t for _, t in before["chapters"]] == ["one", "two"]


def test_a_stream_the_container_cannot_hold_is_named(tmp_path: Path) -> None:
    src, out = tmp_path / "in.mkv", tmp_path / "out.mp4"
    _rich(src)
    with FileSource(src) as source, VideoSink(out, source.info, source.copy_streams) as sink:
        for frame in source:
            sink.write_packets(source.take_packets())
            sink.write(frame)
        sink.write_packets(source.take_packets())
    assert sink.dropped_streams == ["subtitle stream #3 (srt) (.mkv keeps it)"]  # MP4 holds no SubRip
    after = _contents(out)
    assert [s for s, _ in after["streams"]] == ["video", "audio", "audio", "data"]  # MP4 chapters: a text track
    assert after["chapters"] == _contents(src)["chapters"] and after["title"] == "my recording"


def test_a_folder_of_segments_counts_what_it_repaired(tmp_path: Path) -> None:
    from dicface.pipeline.live import SegmentSink

    info = StreamInfo(64, 48, Fraction(25), Fraction(1, 25), 0, None, False)
    image = np.zeros((48, 64, 3), np.uint8)
    with SegmentSink(tmp_path, info, seconds=0.2) as sink:
        for i, pts in enumerate([0, 1, 2, 3, 4, 5, 5, 6]):  # one repeated timestamp, in the second segment
            sink.write(Frame(i, pts, Fraction(1, 25), image))
        assert sink.retimed_frames == 1 and sink.dropped_streams == []
    assert sink.retimed_frames == 1 and len(sink.written) == 2


def test_a_cut_mpeg_ts_is_warned_about_and_a_whole_one_is_not(tmp_path: Path) -> None:
    whole = tmp_path / "whole.ts"
    with av.open(str(whole), "w", format="mpegts") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 160, 96, "yuv420p"
        for i in range(20):
            image = np.random.default_rng(i).integers(0, 255, (96, 160, 3), np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode())
    data = whole.read_bytes()
    assert len(data) % 188 == 0
    cut = tmp_path / "cut.ts"
    cut.write_bytes(data[: len(data) // 2 + 77])  # a recording stopped mid-packet
    with FileSource(whole) as source:
        assert source.stopped_early is None
    with FileSource(cut) as source:
        frames = sum(1 for _ in source)
        assert 0 < frames < 20
        assert source.stopped_early == ("the MPEG-TS file ends inside a packet: it was cut, and its last frames may "
                                        "be missing")
