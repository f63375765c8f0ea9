"""Untrusted uploads in, clean media out: sniff the type from the bytes, decode with
restricted decoders, re-encode images without metadata, remux videos, make thumbnails.

Everything here is CPU-bound and synchronous; callers run it in ``asyncio.to_thread``.
Every failure a client can cause is an ``DomainError`` with a stable code.
"""

from __future__ import annotations

import io
import logging
import os
import tempfile
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO, Any

import av
import filetype
from PIL import Image, ImageOps

from server.errors import DomainError, UnsupportedMedia, ValidationFailed
from stories import rules

log = logging.getLogger(__name__)

# A decompression-bomb warning is a refusal, never a log line (the app also checks the
# pixel count itself before decoding).
warnings.filterwarnings("error", category=Image.DecompressionBombWarning)

IMAGE_FORMATS = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/apng": "PNG",
    "image/webp": "WEBP",
    "image/gif": "GIF",
}
# Sniffed type -> (PyAV container name to write, FFmpeg demuxer names that may read it).
VIDEO_FORMATS = {
    "video/mp4": ("mp4", {"mov,mp4,m4a,3gp,3g2,mj2"}),
    "video/webm": ("webm", {"matroska,webm"}),
}
# What clients may upload, as the publish screen and the OpenAPI document list it (an APNG
# is accepted as a PNG).
IMAGE_TYPES = sorted(m for m in IMAGE_FORMATS if m != "image/apng")
VIDEO_TYPES = sorted(VIDEO_FORMATS)
VIDEO_CODECS = {"h264", "hevc", "vp8", "vp9", "av1"}
AUDIO_CODECS = {"aac", "opus", "vorbis", "mp3"}
SNIFF_BYTES = 8192
# Stories are shown full-screen on phones; larger images only cost bandwidth.
MAX_EDGE = 2160
THUMB_EDGE = 360
# A container whose packets stop this far before its declared length was cut short.
TRUNCATION_SLACK_SECONDS = 0.5


class InvalidMedia(ValidationFailed):
    """The file could not be decoded."""

    code = "invalid_media"


@dataclass(frozen=True)
class Variant:
    data: bytes
    content_type: str
    ext: str


@dataclass(frozen=True)
class Processed:
    kind: str  # "photo" | "video"
    content_type: str
    width: int
    height: int
    duration: float | None
    full: Variant
    thumb: Variant


def sniff(head: bytes) -> str:
    """The accepted MIME type the bytes really are; the file name and header are ignored."""
    mime = filetype.guess_mime(head[:SNIFF_BYTES])
    if mime in IMAGE_FORMATS or mime in VIDEO_FORMATS:
        return str(mime)
    raise UnsupportedMedia(
        "only JPEG, PNG, WebP and GIF images and MP4 and WebM videos are accepted",
        code="unsupported_media_type",
    )


def process(fp: IO[bytes], max_pixels: int, max_video_seconds: float) -> Processed:
    fp.seek(0)
    mime = sniff(fp.read(SNIFF_BYTES))
    fp.seek(0)
    if mime in IMAGE_FORMATS:
        return process_image(fp, IMAGE_FORMATS[mime], max_pixels)
    return process_video(fp, mime, max_pixels, max_video_seconds)


# --- images --------------------------------------------------------------------------------


def _encode(img: Image.Image, alpha: bool, quality: int) -> Variant:
    out = io.BytesIO()
    if alpha:
        img.save(out, "WEBP", quality=quality, method=4)
        return Variant(out.getvalue(), "image/webp", "webp")
    img.save(out, "JPEG", quality=quality, optimize=True, progressive=True)
    return Variant(out.getvalue(), "image/jpeg", "jpg")


def _clean_copy(img: Image.Image) -> Image.Image:
    """Pixels only: a fresh image carries no EXIF, GPS, XMP or ICC data from the upload."""
    alpha = img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info
    clean = Image.new("RGBA" if alpha else "RGB", img.size)
    clean.paste(img.convert(clean.mode))
    return clean


def process_image(fp: IO[bytes], pil_format: str, max_pixels: int) -> Processed:
    try:
        with Image.open(fp, formats=[pil_format]) as src:
            width, height = src.size
            # Checked on the header, before a single pixel is decoded.
            if width * height > max_pixels:
                raise ValidationFailed(
                    f"image has {width}x{height} pixels; the limit is {max_pixels} pixels",
                    code="too_many_pixels",
                )
            src.load()  # first frame only: animated GIF/WebP become a still photo
            upright = ImageOps.exif_transpose(src)
            img = _clean_copy(upright)
    except DomainError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ValidationFailed("image has too many pixels", code="too_many_pixels") from None
    # Decoders of untrusted input fail in many ways (OSError for truncation, SyntaxError,
    # ValueError, struct.error, ...): every one of them means "not a usable image".
    except Exception as exc:
        log.info("image rejected: %r", exc)
        raise InvalidMedia("the image is damaged or truncated") from None
    alpha = img.mode == "RGBA"
    img.thumbnail((MAX_EDGE, MAX_EDGE), Image.Resampling.LANCZOS)
    full = _encode(img, alpha, quality=85)
    thumb_img = img.copy()
    thumb_img.thumbnail((THUMB_EDGE, THUMB_EDGE), Image.Resampling.LANCZOS)
    thumb = _encode(thumb_img, alpha, quality=75)
    return Processed(
        kind="photo",
        content_type=full.content_type,
        width=img.width,
        height=img.height,
        duration=None,
        full=full,
        thumb=thumb,
    )


# --- video ---------------------------------------------------------------------------------


def _seconds(value: int | None, time_base: Any) -> float:
    return float(value * time_base) if value is not None and time_base is not None else 0.0


# The poster frame, upright, and its size.
Poster = tuple[Image.Image, int, int]


def _poster(frame: av.VideoFrame) -> Poster:
    img = frame.to_image()
    # Phones record sideways and set a display rotation; show the poster upright.
    rotation = int(getattr(frame, "rotation", 0) or 0) % 360
    if rotation:
        img = img.rotate(rotation, expand=True)
    return img, img.width, img.height


def process_video(fp: IO[bytes], mime: str, max_pixels: int, max_seconds: float) -> Processed:
    out_format, demuxers = VIDEO_FORMATS[mime]
    with tempfile.TemporaryDirectory(prefix="ephemera-video-") as tmp:
        # The MP4 muxer's faststart pass reopens its output by name, so write to a file.
        out_path = os.path.join(tmp, "out." + out_format)
        try:
            poster, duration = _remux(fp, out_path, out_format, demuxers, max_pixels, max_seconds)
        except DomainError:
            raise
        except Exception as exc:  # FFmpeg errors on untrusted input: see process_image
            log.info("video rejected: %r", exc)
            raise InvalidMedia("the video is damaged, truncated or not decodable") from None
        with open(out_path, "rb") as f:
            data = f.read()
    img, width, height = poster
    img.thumbnail((THUMB_EDGE, THUMB_EDGE), Image.Resampling.LANCZOS)
    return Processed(
        kind="video",
        content_type=mime,
        width=width,
        height=height,
        duration=round(duration, 3),
        full=Variant(data, mime, out_format),
        thumb=_encode(img.convert("RGB"), alpha=False, quality=75),
    )


def _remux(
    fp: IO[bytes],
    out_path: str,
    out_format: str,
    demuxers: set[str],
    max_pixels: int,
    max_seconds: float,
) -> tuple[Poster, float]:
    """Copy the audio/video packets into a fresh container (dropping all metadata and any
    other streams), decode the first frame for the poster, and measure the real length."""
    with av.open(fp, mode="r") as src:
        if src.format.name not in demuxers:
            raise UnsupportedMedia(
                "the container does not match the file type", code="bad_container"
            )
        video, audios = _streams(src, max_pixels)
        declared = _seconds(src.duration, 1 / av.time_base) if src.duration else 0.0
        if rules.video_too_long(declared, max_seconds):
            raise _too_long(declared, max_seconds)
        options = {"movflags": "+faststart"} if out_format == "mp4" else {}
        with av.open(out_path, mode="w", format=out_format, options=options) as out:
            copied = _copy_packets(src, out, video, audios, max_seconds)
        if copied.poster is None or copied.packets == 0:
            raise InvalidMedia("the video has no decodable frame")
        if declared and copied.length < declared - TRUNCATION_SLACK_SECONDS:
            raise InvalidMedia("the video is truncated")
        return copied.poster, max(copied.length, declared)


def _streams(src: Any, max_pixels: int) -> tuple[Any, list[Any]]:
    """The one video track and at most one audio track, if their codecs are accepted."""
    videos = list(src.streams.video)
    if len(videos) != 1:
        raise ValidationFailed("a video needs exactly one video track", code="invalid_media")
    video = videos[0]
    codec = video.codec_context.name
    if codec not in VIDEO_CODECS:
        raise UnsupportedMedia(f"video codec {codec!r} is not accepted", code="unsupported_codec")
    if video.codec_context.width * video.codec_context.height > max_pixels:
        raise ValidationFailed("the video frame is too large", code="too_many_pixels")
    audios = list(src.streams.audio)[:1]
    for a in audios:
        if a.codec_context.name not in AUDIO_CODECS:
            raise UnsupportedMedia(
                f"audio codec {a.codec_context.name!r} is not accepted",
                code="unsupported_codec",
            )
    return video, audios


@dataclass
class _Copied:
    """What copying a video's packets found: how many, the time they span, the poster."""

    packets: int = 0
    start: float | None = None
    end: float = 0.0
    poster: Poster | None = None

    @property
    def length(self) -> float:
        return self.end - (self.start or 0.0)


def _copy_packets(src: Any, out: Any, video: Any, audios: list[Any], max_seconds: float) -> _Copied:
    """Mux every packet of the kept streams into ``out``, refusing a video as soon as its
    packets run past ``max_seconds`` (the header's duration may lie)."""
    copied = _Copied()
    mapping = {s.index: out.add_stream_from_template(s) for s in [video, *audios]}
    for packet in src.demux(video, *audios):
        if packet.dts is None:  # the demuxer's end-of-stream flush packet
            continue
        copied.packets += 1
        if packet.pts is not None:
            t0 = _seconds(packet.pts, packet.time_base)
            copied.start = t0 if copied.start is None else min(copied.start, t0)
            copied.end = max(copied.end, t0 + _seconds(packet.duration, packet.time_base))
            if rules.video_too_long(copied.length, max_seconds):
                raise _too_long(copied.length, max_seconds)
        if copied.poster is None and packet.stream.index == video.index:
            copied.poster = _first_frame(packet.decode())
        packet.stream = mapping[packet.stream.index]
        out.mux(packet)
    if copied.poster is None:  # drain a delayed decoder
        copied.poster = _first_frame(video.codec_context.decode(None))
    return copied


def _first_frame(frames: Iterable[Any]) -> Poster | None:
    for frame in frames:
        if isinstance(frame, av.VideoFrame):
            return _poster(frame)
    return None


def _too_long(seconds: float, max_seconds: float) -> ValidationFailed:
    return ValidationFailed(
        f"the video is {seconds:.1f} s long; the limit is {max_seconds:g} s",
        code="video_too_long",
    )
