"""Still images as input: one frame at time 0, upright (EXIF orientation), always RGB."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from humact.errors import LimitError
from humact.perception.pipeline import extract_video
from humact.types import Detections
from humact.batch import find_inputs
from humact.video import IMAGE_FPS, IMAGE_SUFFIXES, VideoError, probe, read_frames

W, H = 40, 30


def _pattern() -> np.ndarray:
    """A frame with a distinct colour in each quadrant, so orientation errors show."""
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[: H // 2, : W // 2] = (250, 10, 10)
    rgb[: H // 2, W // 2:] = (10, 250, 10)
    rgb[H // 2:, : W // 2] = (10, 10, 250)
    rgb[H // 2:, W // 2:] = (250, 250, 10)
    return rgb


def _same_quadrants(rgb: np.ndarray) -> bool:
    """Each quadrant's centre has the colour of `_pattern`'s (JPEG blurs only the edges)."""
    want = _pattern()
    return all(np.abs(rgb[y, x].astype(int) - want[y, x]).max() < 20
               for y in (H // 4, 3 * H // 4) for x in (W // 4, 3 * W // 4))


def _save(path: Path, im: Image.Image, **kw) -> Path:
    im.save(path, **kw)
    return path


def _only_frame(path: Path) -> np.ndarray:
    frames = list(read_frames(path))
    assert [i for i, _ in frames] == [0]
    rgb = frames[0][1]
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
    return rgb


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".bmp", ".webp"])
def test_an_image_is_one_frame_at_time_zero(tmp_path, suffix):
    kw = {"quality": 95} if suffix in (".jpg", ".webp") else {}
    path = _save(tmp_path / f"a{suffix}", Image.fromarray(_pattern()), **kw)
    meta = probe(path)
    assert (meta.width, meta.height, meta.num_frames) == (W, H, 1)
    assert meta.frame_times.tolist() == [0.0] and meta.fps == IMAGE_FPS
    rgb = _only_frame(path)
    assert rgb.shape == (H, W, 3) and _same_quadrants(rgb)
    if suffix in (".png", ".bmp"):
        assert np.array_equal(rgb, _pattern())


def test_the_image_suffixes_are_the_documented_ones():
    assert IMAGE_SUFFIXES == {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def test_an_uppercase_suffix_is_an_image_too(tmp_path):
    path = _save(tmp_path / "A.JPEG", Image.fromarray(_pattern()))
    assert probe(path).num_frames == 1 and _only_frame(path).shape == (H, W, 3)


@pytest.mark.parametrize("orientation, turn", [(3, 2), (6, -1), (8, 1)])
def test_exif_orientation_is_applied_so_the_frame_is_upright(tmp_path, orientation, turn):
    exif = Image.Exif()
    exif[0x0112] = orientation
    # The camera stored the upright picture turned; the EXIF tag says how to turn it back.
    stored = np.rot90(_pattern(), k=-turn)
    path = _save(tmp_path / "phone.jpg", Image.fromarray(np.ascontiguousarray(stored)), exif=exif, quality=95)
    meta = probe(path)
    assert (meta.width, meta.height) == (W, H)
    rgb = _only_frame(path)
    assert rgb.shape == (H, W, 3) and _same_quadrants(rgb)


def test_a_grey_image_becomes_rgb(tmp_path):
    grey = np.tile(np.arange(W, dtype=np.uint8) * 6, (H, 1))
    rgb = _only_frame(_save(tmp_path / "g.png", Image.fromarray(grey, mode="L")))
    assert np.array_equal(rgb, np.repeat(grey[..., None], 3, 2))


def test_a_16_bit_grey_image_is_scaled_to_8_bits(tmp_path):
    grey = (np.tile(np.arange(W, dtype=np.uint16), (H, 1)) * 1600).astype(np.uint16)
    path = _save(tmp_path / "g16.png", Image.fromarray(grey))
    assert Image.open(path).mode.startswith("I")
    rgb = _only_frame(path)
    assert np.array_equal(rgb[..., 0], (grey >> 8).astype(np.uint8)) and np.array_equal(rgb[..., 0], rgb[..., 2])


def test_transparency_is_composited_over_white(tmp_path):
    rgba = np.zeros((H, W, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, : W // 2, 3] = 255  # left half opaque red-ish, right half fully transparent
    rgba[:, W // 2:, 3] = 0
    rgb = _only_frame(_save(tmp_path / "a.png", Image.fromarray(rgba, mode="RGBA")))
    assert (rgb[:, : W // 2] == (200, 0, 0)).all()
    assert (rgb[:, W // 2:] == 255).all()


def test_half_transparent_pixels_are_blended(tmp_path):
    rgba = np.zeros((H, W, 4), np.uint8)
    rgba[..., 3] = 128  # black at half opacity over white: mid grey
    rgb = _only_frame(_save(tmp_path / "half.webp", Image.fromarray(rgba, mode="RGBA"), lossless=True))
    assert np.all(np.abs(rgb.astype(int) - 127) <= 1)


def test_a_palette_image_with_a_transparent_colour_becomes_rgb(tmp_path):
    im = Image.fromarray(_pattern()).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    transparent = im.getpixel((0, 0))
    rgb = _only_frame(_save(tmp_path / "p.png", im, transparency=transparent))
    assert (rgb[0, 0] == 255).all() and rgb[-1, -1, 2] < 100  # top-left quadrant white, bottom-right yellow


def test_an_animated_image_is_refused_naming_the_file(tmp_path):
    frames = [Image.fromarray(np.full((H, W, 3), v, np.uint8)) for v in (0, 128, 255)]
    path = tmp_path / "anim.webp"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
    with pytest.raises(VideoError, match=r"anim\.webp: an animated image with 3 frames"):
        probe(path)


def test_a_truncated_jpeg_is_a_video_error_naming_the_file(tmp_path):
    rng = np.random.default_rng(0)
    full = _save(tmp_path / "full.jpg", Image.fromarray(rng.integers(0, 256, (200, 200, 3), dtype=np.uint8)))
    data = full.read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoError, match=r"cut\.jpg: corrupt or truncated image"):
        list(read_frames(tmp_path / "cut.jpg"))


def test_a_text_file_named_like_an_image_is_refused(tmp_path):
    (tmp_path / "notes.png").write_text("not pixels\n")
    with pytest.raises(VideoError, match=r"notes\.png: not an image"):
        probe(tmp_path / "notes.png")


@pytest.mark.parametrize("limit", [W * H - 1, W * H // 3])  # just above; above twice (Pillow's own error)
def test_an_image_above_the_pixel_limit_is_refused_before_decoding(tmp_path, monkeypatch, limit):
    path = _save(tmp_path / "big.png", Image.fromarray(_pattern()))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    with pytest.raises(LimitError, match=r"big\.png: .*above the limit of \d+ pixels"):
        probe(path)


def test_read_frames_of_an_image_honours_indices_and_ranges(tmp_path):
    path = _save(tmp_path / "a.png", Image.fromarray(_pattern()))
    assert [i for i, _ in read_frames(path, indices=[0])] == [0]
    assert list(read_frames(path, start=1)) == []
    with pytest.raises(IndexError):
        list(read_frames(path, indices=[1]))


def test_a_folder_of_images_is_one_input_per_image(tmp_path):
    _save(tmp_path / "a.jpg", Image.fromarray(_pattern()))
    (tmp_path / "sub").mkdir()
    _save(tmp_path / "sub" / "b.png", Image.fromarray(_pattern()))
    (tmp_path / ".c.ab12cd34.tmp.png").write_bytes((tmp_path / "a.jpg").read_bytes())
    names = [rel.as_posix() for _, rel in find_inputs(tmp_path)]
    assert names == ["a.jpg", "sub/b.png"]


class _Centre:
    name = "centre"

    def reset(self) -> None:
        pass

    def __call__(self, frame: np.ndarray, frame_index: int) -> Detections:
        h, w = frame.shape[:2]
        kp = np.stack([np.linspace(0.3, 0.7, 17) * w, np.linspace(0.2, 0.9, 17) * h], -1).astype(np.float32)
        return Detections(frame=[frame_index], xyxy=[[*kp.min(0), *kp.max(0)]], score=[0.9], keypoints=kp[None],
                          keypoint_scores=np.full((1, 17), 0.9, np.float32))


def test_extract_video_on_an_image_gives_a_one_frame_result(tmp_path):
    path = _save(tmp_path / "person.jpg", Image.fromarray(_pattern()))
    result = extract_video(path, backend=_Centre())
    assert result.meta.num_frames == 1 and not result.partial and result.frames_decoded == 1
    assert result.tracks.num_persons == 1 and result.tracks.valid.all()
