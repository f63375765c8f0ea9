"""Signaling messages and SDP checks: pure functions, no I/O.

The router (any process) validates a participant's ``rtc.*`` message here before routing it,
and the node serving the participant's media parses it again; both raise the same domain
errors (``bad_rtc_message``, ``bad_sdp``, ``audio_only``, ``opus_required``, ``bad_ice``).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from aiortc import RTCRtpHeaderExtensionParameters
from aiortc.sdp import SessionDescription
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from server.errors import ValidationFailed

MAX_SDP = 32 * 1024
_UFRAG = re.compile(r"^a=ice-ufrag:(\S+)", re.M)


class _Msg(BaseModel):
    model_config = ConfigDict(extra="ignore")


class RtcOffer(_Msg):
    type: Literal["rtc.offer"]
    sdp: str = Field(min_length=1, max_length=MAX_SDP)


class RtcAnswer(_Msg):
    type: Literal["rtc.answer"]
    sdp: str = Field(min_length=1, max_length=MAX_SDP)


class IceCandidate(_Msg):
    candidate: str = Field(max_length=1024)
    sdpMid: str | None = Field(default=None, max_length=64)
    sdpMLineIndex: int | None = Field(default=None, ge=0, le=1024)


class RtcIce(_Msg):
    type: Literal["rtc.ice"]
    candidate: IceCandidate | None


RtcMessage = RtcOffer | RtcAnswer | RtcIce
_RTC_MESSAGE: TypeAdapter[RtcMessage] = TypeAdapter(
    Annotated[RtcMessage, Field(discriminator="type")]
)


def parse_message(message: dict[str, Any]) -> RtcMessage:
    try:
        return _RTC_MESSAGE.validate_python(message)
    except ValidationError as exc:
        raise ValidationFailed(_first_error(exc), code="bad_rtc_message") from exc


def parse_sdp(sdp: str) -> SessionDescription:
    """An audio-only, Opus-offering session description with ICE credentials."""
    try:
        description = SessionDescription.parse(sdp)
    except Exception as exc:  # aiortc raises assorted errors on malformed SDP
        raise ValidationFailed(f"malformed SDP: {exc}", code="bad_sdp") from exc
    if not description.media:
        raise ValidationFailed("the SDP has no media section", code="bad_sdp")
    for media in description.media:
        if media.kind != "audio":
            raise ValidationFailed("rooms carry audio only", code="audio_only")
        if not any(c.mimeType.lower() == "audio/opus" for c in media.rtp.codecs):
            raise ValidationFailed("every audio section must offer Opus", code="opus_required")
        if media.ice is None or not media.ice.usernameFragment:
            raise ValidationFailed("the SDP has no ICE credentials", code="bad_sdp")
    return description


def ufrag(description: SessionDescription) -> str:
    """The ICE username fragment: one per client-side peer connection."""
    ice = description.media[0].ice
    return ice.usernameFragment if ice is not None and ice.usernameFragment else ""


def sdp_ufrag(sdp: str) -> str:
    """The first ICE username fragment of an SDP, without parsing all of it."""
    match = _UFRAG.search(sdp)
    return match.group(1) if match else ""


def keep_session_formats(offer_sdp: str, remote_sdp: str) -> str:
    """Our re-offer, with the payload type and header extension ids the client chose.

    aiortc builds every offer from its own defaults (Opus as payload type 96, its own
    extension ids) even for m-lines negotiated earlier with the client's numbers (a
    browser's Opus is 111), while its running senders and receivers keep the first
    numbers. Changing them in a re-offer would silence those m-lines, and mixing ids in
    one BUNDLE group is refused by browsers, so every m-line keeps the session's numbers.
    """
    remote = SessionDescription.parse(remote_sdp).media[0].rtp
    opus = next(c for c in remote.codecs if c.mimeType.lower() == "audio/opus")
    extension_ids = {e.uri: e.id for e in remote.headerExtensions}
    offer = SessionDescription.parse(offer_sdp)
    for media in offer.media:
        for codec in media.rtp.codecs:
            if codec.mimeType.lower() == "audio/opus":
                codec.payloadType = opus.payloadType
        media.fmt = [c.payloadType for c in media.rtp.codecs]
        media.rtp.headerExtensions = [
            RTCRtpHeaderExtensionParameters(id=extension_ids[e.uri], uri=e.uri)
            for e in media.rtp.headerExtensions
            if e.uri in extension_ids
        ]
    return str(offer)


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    return f"{where}: {err['msg']}" if where else str(err["msg"])
