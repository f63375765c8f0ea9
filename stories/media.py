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


def _poster(frame: av.VideoFrame) -> tuple[Image.Image, int, int]:
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
) -> tuple[tuple[Image.Image, int, int], float]:
    """Copy the audio/video packets into a fresh container (dropping all metadata and any
    other streams), decode the first frame for the poster, and measure the real length."""
    with av.open(fp, mode="r") as src:
        if src.format.name not in demuxers:
            raise UnsupportedMedia(
                "the container does not match the file type", code="bad_container"
            )
        videos = list(src.streams.video)
        if len(videos) != 1:
            raise ValidationFailed("a video needs exactly one video track", code="invalid_media")
        video = videos[0]
        codec = video.codec_context.name
        if codec not in VIDEO_CODECS:
            raise UnsupportedMedia(
                f"video codec {codec!r} is not accepted", code="unsupported_codec"
            )
        if video.codec_context.width * video.codec_context.height > max_pixels:
            raise ValidationFailed("the video frame is too large", code="too_many_pixels")
        audios = list(src.streams.audio)[:1]
        for a in audios:
            if a.codec_context.name not in AUDIO_CODECS:
                raise UnsupportedMedia(
                    f"audio codec {a.codec_context.name!r} is not accepted",
                    code="unsupported_codec",
                )
        declared = _seconds(src.duration, 1 / av.time_base) if src.duration else 0.0
        if rules.video_too_long(declared, max_seconds):
            raise _too_long(declared, max_seconds)
        options = {"movflags": "+faststart"} if out_format == "mp4" else {}
        start: float | None = None
        end = 0.0
        poster = None
        packets = 0
        with av.open(out_path, mode="w", format=out_format, options=options) as out:
            mapping = {s.index: out.add_stream_from_template(s) for s in [video, *audios]}
            for packet in src.demux(video, *audios):
                if packet.dts is None:  # the demuxer's end-of-stream flush packet
                    continue
                packets += 1
                if packet.pts is not None:
                    t0 = _seconds(packet.pts, packet.time_base)
                    start = t0 if start is None else min(start, t0)
                    end = max(end, t0 + _seconds(packet.duration, packet.time_base))
                    if rules.video_too_long(end - start, max_seconds):
                        raise _too_long(end - start, max_seconds)
                if poster is None and packet.stream.index == video.index:
                    for frame in packet.decode():
                        if isinstance(frame, av.VideoFrame):
                            poster = _poster(frame)
                            break
                packet.stream = mapping[packet.stream.index]
                out.mux(packet)
            if poster is None:
                for frame in video.codec_context.decode(None):  # drain a delayed decoder
                    poster = _poster(frame)
                    break
        if poster is None or packets == 0:
            raise InvalidMedia("the video has no decodable frame")
        measured = end - (start or 0.0)
        if declared and measured < declared - TRUNCATION_SLACK_SECONDS:
            raise InvalidMedia("the video is truncated")
        return poster, max(measured, declared)


def _too_long(seconds: float, max_seconds: float) -> ValidationFailed:
    return ValidationFailed(
        f"the video is {seconds:.1f} s long; the limit is {max_seconds:g} s",
        code="video_too_long",
    )
