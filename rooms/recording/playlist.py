"""HLS media playlists (RFC 8216) of a recording, as text. Plain code, no I/O.

A live recording is an ``EVENT`` playlist that grows by one segment every ~2 s (players
may start anywhere and seek back to the start); once the room ends it gets
``EXT-X-ENDLIST`` and becomes the replay's ``VOD`` playlist. Segments are fragments of one
fragmented MP4 stream sharing one initialization section (``EXT-X-MAP``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

INIT = "init.mp4"
PLAYLIST = "index.m3u8"
DOWNLOAD = "replay.m4a"
TARGET_SECONDS = 2.0


def segment_name(index: int) -> str:
    """The file name of segment ``index`` (0, 1, ...): ``s00000.m4s``."""
    return f"s{index:05d}.m4s"


def media_playlist(durations: Sequence[float], *, ended: bool) -> str:
    """The playlist of segments with these durations (seconds), in order."""
    target = max([TARGET_SECONDS, *durations])
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:7",
        f"#EXT-X-TARGETDURATION:{math.ceil(target)}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        f"#EXT-X-PLAYLIST-TYPE:{'VOD' if ended else 'EVENT'}",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        f'#EXT-X-MAP:URI="{INIT}"',
    ]
    for index, seconds in enumerate(durations):
        lines += [f"#EXTINF:{seconds:.3f},", segment_name(index)]
    if ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def with_query(playlist: str, query: str) -> str:
    """The playlist with ``?query`` appended to every URI it names (signed links)."""
    out = []
    for line in playlist.splitlines():
        if line.startswith("#EXT-X-MAP:URI="):
            line = f'#EXT-X-MAP:URI="{INIT}?{query}"'
        elif line and not line.startswith("#"):
            line = f"{line}?{query}"
        out.append(line)
    return "\n".join(out) + "\n"
