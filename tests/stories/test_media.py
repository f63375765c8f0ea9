"""The media pipeline on its own: sniffing, image cleaning, video probing and remuxing."""

from __future__ import annotations

import io

import av
import pytest
from PIL import Image

from server.errors import DomainError
from server.http_errors import status_of
from stories import media
from tests.stories import samples

MAX_PIXELS = 40_000_000


def run(data: bytes, max_pixels: int = MAX_PIXELS, max_seconds: float = 60.0) -> media.Processed:
    return media.process(io.BytesIO(data), max_pixels, max_seconds)


def refused(data: bytes, **kw: float) -> DomainError:
    with pytest.raises(DomainError) as info:
        run(data, **kw)  # type: ignore[arg-type]
    return info.value


def test_jpeg_is_turned_upright_and_stripped() -> None:
    # Orientation 6: the camera was turned; the stored pixels are 64x32, shown 32x64.
    out = run(samples.jpeg((64, 32), orientation=6, gps=True))
    assert (out.kind, out.content_type, out.width, out.height) == ("photo", "image/jpeg", 32, 64)
    with Image.open(io.BytesIO(out.full.data)) as img:
        assert img.format == "JPEG" and img.size == (32, 64)
        assert dict(img.getexif()) == {}
        assert "exif" not in img.info and "icc_profile" not in img.info
    with Image.open(io.BytesIO(out.thumb.data)) as thumb:
        assert max(thumb.size) <= media.THUMB_EDGE


def test_large_images_are_scaled_and_thumbnailed() -> None:
    out = run(samples.image("PNG", (3000, 1500)))
    assert (out.width, out.height) == (media.MAX_EDGE, media.MAX_EDGE // 2)
    with Image.open(io.BytesIO(out.thumb.data)) as thumb:
        assert thumb.size == (media.THUMB_EDGE, media.THUMB_EDGE // 2)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "GIF"])
def test_other_image_formats_are_reencoded(fmt: str) -> None:
    out = run(samples.image(fmt))
    assert out.content_type == "image/jpeg"
    assert Image.open(io.BytesIO(out.full.data)).format == "JPEG"


def test_transparency_is_kept_as_webp() -> None:
    out = run(samples.image("PNG", mode="RGBA"))
    assert out.content_type == "image/webp"
    assert Image.open(io.BytesIO(out.full.data)).mode == "RGBA"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"%PDF-1.7\n" + b"x" * 500, "unsupported_media_type"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", "unsupported_media_type"),
        (b"", "unsupported_media_type"),
        (samples.image("BMP"), "unsupported_media_type"),
        (samples.image("TIFF"), "unsupported_media_type"),
    ],
)
def test_unaccepted_types_are_refused(data: bytes, code: str) -> None:
    err = refused(data)
    assert (status_of(err), err.code) == (415, code)


def test_truncated_image_is_refused() -> None:
    data = samples.image("PNG", (400, 400))
    err = refused(data[: len(data) // 2])
    assert (status_of(err), err.code) == (422, "invalid_media")
    err = refused(samples.jpeg((200, 200))[:300])
    assert (status_of(err), err.code) == (422, "invalid_media")


def test_pixel_bomb_is_refused_before_decoding() -> None:
    err = refused(samples.pixel_bomb_png())
    assert (status_of(err), err.code) == (422, "too_many_pixels")
    # Also under the configured cap, well below Pillow's own threshold.
    err = refused(samples.image("PNG", (1000, 1000)), max_pixels=500_000)
    assert err.code == "too_many_pixels"


@pytest.mark.parametrize("fmt", ["mp4", "webm"])
def test_video_is_remuxed_with_a_poster(fmt: str) -> None:
    data = samples.video(2.0, fmt, metadata={"location": "+48.8577+002.2950/", "title": "x"})
    out = run(data)
    assert (out.kind, out.content_type) == ("video", f"video/{fmt}")
    assert (out.width, out.height) == (96, 64)
    assert out.duration == pytest.approx(2.0, abs=0.3)
    assert out.thumb.content_type == "image/jpeg"
    with av.open(io.BytesIO(out.full.data)) as c:
        assert not any("location" in k.lower() for k in c.metadata)
        assert "title" not in c.metadata
        assert c.streams.video[0].codec_context.name == ("h264" if fmt == "mp4" else "vp8")


def test_rotated_video_is_reported_and_postered_upright() -> None:
    # Stored 96x64 with a 90° display rotation: shown 64x96, the white left half at the bottom.
    out = run(samples.video(1.0, rotation=90, left_white=True))
    assert (out.width, out.height) == (64, 96)
    with Image.open(io.BytesIO(out.thumb.data)) as poster:
        assert poster.size == (64, 96)
        assert poster.convert("L").getpixel((32, 10)) < 60  # type: ignore[operator]
        assert poster.convert("L").getpixel((32, 85)) > 200  # type: ignore[operator]
    with av.open(io.BytesIO(out.full.data), "r") as c:
        frame = next(c.decode(video=0))
        assert frame.rotation == 90  # the remux keeps the display matrix for players


def test_too_long_video_is_refused() -> None:
    err = refused(samples.video(61.0, fps=1))
    assert (status_of(err), err.code) == (422, "video_too_long")
    assert run(samples.video(3.0, fps=1), max_seconds=3.0).kind == "video"
    assert refused(samples.video(5.0, fps=1), max_seconds=3.0).code == "video_too_long"


@pytest.mark.parametrize("fmt", ["mp4", "webm"])
def test_truncated_video_is_refused(fmt: str) -> None:
    data = samples.video(3.0, fmt, fps=10, size=(160, 120), noise=True)
    err = refused(data[: len(data) // 2])
    assert (status_of(err), err.code) == (422, "invalid_media")


def test_video_with_unknown_codec_is_refused() -> None:
    # MPEG-4 part 2 in an MP4 container: a real video, but not a codec we accept.
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("mpeg4", rate=4)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for _ in range(4):
            frame = av.VideoFrame.from_image(Image.new("RGB", (64, 64)))
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    err = refused(buf.getvalue())
    assert (status_of(err), err.code) == (415, "unsupported_codec")


def test_image_behind_video_bytes_is_judged_by_content() -> None:
    # The file name never reaches the pipeline; only the bytes decide.
    assert run(samples.jpeg()).kind == "photo"
    assert run(samples.video(1.0)).kind == "video"
