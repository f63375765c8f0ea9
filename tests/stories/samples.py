"""Media files made on the fly for the tests: real encoders, nothing checked in."""

from __future__ import annotations

import io
import os
import struct
import tempfile
import zlib

import av
import numpy as np
from PIL import Image

ORIENTATION = 0x0112
GPS_IFD = 0x8825


def jpeg(
    size: tuple[int, int] = (64, 32),
    colour: str = "red",
    orientation: int | None = None,
    gps: bool = False,
) -> bytes:
    img = Image.new("RGB", size, colour)
    exif = Image.Exif()
    if orientation is not None:
        exif[ORIENTATION] = orientation
    if gps:
        exif[0x010F] = "PhoneMaker"
        ifd = exif.get_ifd(GPS_IFD)
        ifd[1], ifd[2] = "N", (48.0, 51.0, 24.0)
        ifd[3], ifd[4] = "E", (2.0, 21.0, 3.0)
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def image(fmt: str, size: tuple[int, int] = (48, 48), mode: str = "RGB") -> bytes:
    img = Image.new(mode, size, (0, 128, 255, 128) if mode == "RGBA" else (0, 128, 255))
    out = io.BytesIO()
    img.save(out, fmt)
    return out.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def pixel_bomb_png(width: int = 50_000, height: int = 50_000) -> bytes:
    """A tiny PNG whose header claims billions of pixels (of compressible black)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    row = b"\x00" * (1 + width // 8)
    idat = zlib.compress(row * 64, 9)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def video(
    seconds: float,
    fmt: str = "mp4",
    fps: int = 4,
    size: tuple[int, int] = (96, 64),
    noise: bool = False,
    metadata: dict[str, str] | None = None,
    rotation: int = 0,
    left_white: bool = False,
) -> bytes:
    """An H.264/MP4 or VP8/WebM clip encoded with PyAV; ``rotation`` sets the display matrix
    (counter-clockwise degrees), as phones do for portrait recordings."""
    codec = "libx264" if fmt == "mp4" else "libvpx"
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "clip." + fmt)
        with av.open(path, "w", format=fmt) as out:
            out.metadata.update(metadata or {})
            stream = out.add_stream(codec, rate=fps)
            assert isinstance(stream, av.VideoStream)
            stream.width, stream.height = size
            stream.pix_fmt = "yuv420p"
            if rotation:
                stream.set_display_rotation(rotation)
            for i in range(round(seconds * fps)):
                if left_white:
                    pixels = np.zeros((size[1], size[0], 3), dtype=np.uint8)
                    pixels[:, : size[0] // 2] = 255
                elif noise:
                    pixels = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
                else:
                    pixels = np.full((size[1], size[0], 3), (i * 40) % 255, dtype=np.uint8)
                frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
                for packet in stream.encode(frame):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
        with open(path, "rb") as f:
            return f.read()
