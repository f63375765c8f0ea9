"""The media relay service: one RTCPeerConnection per participant, signaling, forwarding.

Implements :class:`rooms.media.port.MediaService` for the control plane. Each participant
has one peer connection with:

* the *upstream* transceiver: the first audio m-line of the client's first offer; it
  receives the participant's microphone when they speak (server direction ``sendrecv``, so
  it also carries one other speaker down to them);
* *slots*: one sending transceiver per other live speaker, each fed by a
  :class:`~rooms.media.fanout.Output` (the fast path: the fan-out sends, aiortc's sender only
  negotiates and reports). Slots are reused when speakers come and go and added (with a
  server offer) only when a listener needs more than it has.

A connected participant that sends nothing at all for ``relay_silence_seconds`` (no ICE
consent answer, no RTCP, no media) is gone: its connection is closed as if ICE had failed.

Signaling follows "perfect negotiation": the client offers first; afterwards either side may
offer. aiortc fires no ``negotiationneeded``, so the server renegotiates explicitly when it
added slots or when a participant becomes allowed to publish. In glare the server is the
impolite side: it ignores the client's colliding offer, and the client rolls back and answers.
Server offers carry ``publish`` (whether the participant may send audio now), so a client
attaches its microphone before answering.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog
from aiortc import (
    RTCConfiguration,
    RTCDtlsTransport,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamTrack
from aiortc.sdp import SessionDescription, candidate_from_sdp

from rooms.control import events
from rooms.media.aiortc_seam import (
    IdleTrack,
    open_link,
    send_from_fanout,
    tap_receiver,
)
from rooms.media.fanout import Counters, FanOut, Link, Output, sender_reports
from rooms.media.port import PublishEvent, SendJson
from rooms.media.relay import ForwardTrack, PacketTap, RoomRelay, Slot
from rooms.media.signaling import (
    IceCandidate,
    RtcAnswer,
    RtcOffer,
    keep_session_formats,
    parse_message,
    parse_sdp,
    ufrag,
)
from rooms.media.speaking import UPDATE_INTERVAL, SpeakingDetector
from server import metrics
from server.errors import Conflict, ValidationFailed
from server.settings import Settings

log = structlog.get_logger(__name__)

OPUS = next(
    c for c in RTCRtpSender.getCapabilities("audio").codecs if c.mimeType.lower() == "audio/opus"
)
SEND_TIMEOUT = 2.0  # a stuck WebSocket must not hold the room's ticker
# A participant quiet this long (browsers ping the selected pair every 2.5 s, aioice every
# 5 s) is asked for a sign of life (an ICE consent request) about once a second, so a live
# one answers several times before relay_silence_seconds; a vanished one never does.
PROBE_AFTER = 1.5
PROBE_EVERY = 1.0
# RTCP sender reports of a listener's streams: one compound packet every 2.5-7.5 s (the
# interval browsers use for audio), the first a second after the connection is up.
REPORT_SECONDS = 5.0


class NodeHooks(Protocol):
    """What the node around the relay (``rooms.media.node``) is told of, when there is one."""

    def sources_changed(self, room: RoomMedia) -> None:
        """A local speaker's source started or ended (an origin tells its edges)."""

    def room_idle(self, room: RoomMedia) -> None:
        """The room has nothing left on this node and was forgotten here."""


@dataclass(eq=False)
class Peer:
    """One participant's peer connection on this node."""

    room: RoomMedia
    user_id: str
    pc: RTCPeerConnection
    send: SendJson
    ufrag: str
    slots: list[Slot] = field(default_factory=list)
    # One per DTLS transport (one with BUNDLE): how the fan-out reaches this participant.
    links: dict[RTCDtlsTransport, Link] = field(default_factory=dict)
    upstream: RTCRtpTransceiver | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    wants_offer: bool = False
    dirty: bool = False
    task: asyncio.Task[None] | None = None
    closed: bool = False

    @property
    def state(self) -> str:
        return str(self.pc.connectionState)

    def silent_for(self, now: float) -> float:
        """Seconds since the participant last sent us anything (0 before it connected)."""
        if not self.links:
            return 0.0
        return now - max(link.heard_at for link in self.links.values())

    def outputs(self, link: Link) -> list[Output]:
        return [s for s in self.slots if isinstance(s, Output) and s.link is link]


@dataclass(eq=False)
class RoomMedia:
    """Everything of one room's media on this node.

    ``origin``: this node receives the room's speakers (always, on a single node); an edge
    receives their packets from the origin over the trunk instead (``rooms.media.node``).
    """

    id: str
    relay: RoomRelay
    counters: Counters
    origin: bool = True
    peers: dict[str, Peer] = field(default_factory=dict)
    detector: SpeakingDetector = field(default_factory=SpeakingDetector)
    ticker: asyncio.Task[None] | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def listeners(self) -> int:
        """Peers that may not publish."""
        allowed = self.relay.allowed
        return sum(1 for user in self.peers if not allowed.get(user, False))


def _ice_server(entry: dict[str, Any]) -> RTCIceServer:
    return RTCIceServer(
        urls=entry["urls"], username=entry.get("username"), credential=entry.get("credential")
    )


class RelayMediaService:
    """The SFU of this process: every peer connection it serves.

    On its own it implements ``rooms.media.port.MediaService`` for one node (every room
    here is its own origin); in a deployment the router (``rooms.media.router``) is the
    port and the node (``rooms.media.node``) drives this service for the participants
    routed here.
    """

    def __init__(
        self,
        settings: Settings,
        publish: PublishEvent | None = None,
        hooks: NodeHooks | None = None,
    ) -> None:
        self.settings = settings
        # Room events go out on the room's channel to every process; without it (tests of
        # the relay alone) straight to this node's peers.
        self.publish = publish
        self.hooks = hooks
        self.rooms: dict[str, RoomMedia] = {}
        self.taps: dict[str, PacketTap] = {}  # room id -> its recorder (rooms.recording)
        self.fanout = FanOut()
        # The server itself needs STUN at most (to learn its public address), never TURN.
        stun = [s for s in settings.ice_servers if _urls_start_with(s, "stun")]
        self._rtc_config = RTCConfiguration(iceServers=[_ice_server(s) for s in stun])

    # ---------------------------------------------------------------- MediaService

    async def signal(
        self, room_id: str, user_id: str, message: dict[str, Any], send: SendJson
    ) -> None:
        msg = parse_message(message)
        room = self.rooms.get(room_id)
        peer = room.peers.get(user_id) if room else None
        if isinstance(msg, RtcOffer):
            description = parse_sdp(msg.sdp)
            if peer is None or peer.ufrag != ufrag(description):
                # A first offer, or one from a new client-side connection (a reload or a
                # reconnect): the new connection replaces the old one.
                if peer is not None:
                    await self._drop_peer(peer)
                peer = self._new_peer(self.room(room_id), user_id, send, ufrag(description))
                await self._first_offer(peer, msg.sdp, description)
                return
        if peer is None:
            raise Conflict("send rtc.offer first", code="no_peer_connection")
        peer.send = send
        if isinstance(msg, RtcOffer):
            await self._offer(peer, msg.sdp, description)
        elif isinstance(msg, RtcAnswer):
            await self._answer(peer, msg.sdp)
        else:
            await self._ice(peer, msg.candidate)

    async def set_publishing(self, room_id: str, user_id: str, allowed: bool) -> None:
        room = self.rooms.get(room_id)
        if room is None:
            if not allowed:
                return
            room = self.room(room_id)
        was = room.relay.allowed.get(user_id, False)
        room.relay.set_allowed(user_id, allowed)  # gates the very next packet
        log.info("media.publishing", room=room_id, user=user_id, allowed=allowed)
        peer = room.peers.get(user_id)
        if allowed and not was and peer is not None and room.origin:
            source = room.relay.sources.get(user_id)
            if source is None or not source.receiving:
                # Invite the client to send its microphone on the upstream m-line.
                peer.wants_offer = True
                self._schedule(peer)
        if was != allowed:
            self._sync_room(room)
            self._sources_changed(room)
        self._forget_if_idle(room)

    async def leave(self, room_id: str, user_id: str, ufrag: str | None = None) -> None:
        """The participant left: close their peer connection (only the one with ``ufrag``,
        when given: a newer one of theirs stays)."""
        room = self.rooms.get(room_id)
        if room is None:
            return
        peer = room.peers.get(user_id)
        if ufrag is not None and peer is not None and peer.ufrag != ufrag:
            return
        room.relay.set_allowed(user_id, False)
        if peer is not None:
            await self._drop_peer(peer)
        room.relay.allowed.pop(user_id, None)
        self._forget_if_idle(room)

    async def end_room(self, room_id: str) -> None:
        room = self.rooms.pop(room_id, None)
        if room is not None:
            await self._close_room(room)
            if self.hooks is not None:
                self.hooks.room_idle(room)

    # ---------------------------------------------------------------- for the node

    def room(self, room_id: str, *, origin: bool = True) -> RoomMedia:
        """The room's media here, created (as origin, or as an edge) if need be."""
        room = self.rooms.get(room_id)
        if room is None:
            counters = Counters()
            relay = RoomRelay(counters, mode=self.settings.relay_mode, fanout=self.fanout)
            relay.set_tap(self.taps.get(room_id))
            room = RoomMedia(room_id, relay, counters, origin=origin)
            self.rooms[room_id] = room
        return room

    def peer_ufrag(self, room_id: str, user_id: str) -> str | None:
        room = self.rooms.get(room_id)
        peer = room.peers.get(user_id) if room else None
        return peer.ufrag if peer else None

    def listeners(self) -> int:
        return sum(room.listeners() for room in self.rooms.values())

    def sync(self, room: RoomMedia) -> None:
        """The room's sources changed: every peer's slots follow."""
        self._sync_room(room)

    async def restart(self, room: RoomMedia, user_id: str) -> None:
        """Ask the participant to connect their media again (through the router, which
        places them anew) and close their peer connection here."""
        peer = room.peers.get(user_id)
        if peer is None:
            return
        publish = room.relay.allowed.get(user_id, False)
        await self._send(peer, events.RtcRestart(publish=publish).wire())
        await self._drop_peer(peer)
        self._forget_if_idle(room)

    def tap_room(self, room_id: str, tap: PacketTap | None) -> None:
        """The recording hook: hand the room's gated packets to ``tap`` (None: stop),
        including a room whose media starts or restarts on this node later."""
        if tap is None:
            self.taps.pop(room_id, None)
        else:
            self.taps[room_id] = tap
        room = self.rooms.get(room_id)
        if room is not None:
            room.relay.set_tap(tap)

    def claimed(self, room_id: str) -> bool:
        """Whether this node serves the room's media (where its recording is made)."""
        room = self.rooms.get(room_id)
        return room is not None and room.origin

    # ---------------------------------------------------------------- queries

    def speaking(self, room_id: str) -> list[str]:
        room = self.rooms.get(room_id)
        return list(room.detector.speaking) if room else []

    def peer_state(self, room_id: str, user_id: str) -> str | None:
        """The participant's peer connection state on this node, or None without one."""
        room = self.rooms.get(room_id)
        peer = room.peers.get(user_id) if room else None
        return peer.state if peer else None

    def stats(self) -> dict[str, int]:
        """Counts for operators and tests: rooms, peers, live sources, slots."""
        rooms = list(self.rooms.values())
        return {
            "rooms": len(rooms),
            "peers": sum(len(r.peers) for r in rooms),
            "sources": sum(len(r.relay.live_sources()) for r in rooms),
            "slots": sum(len(p.slots) for r in rooms for p in r.peers.values()),
        }

    # ---------------------------------------------------------------- lifecycle

    async def close(self) -> None:
        """Server shutdown: close every peer connection."""
        rooms, self.rooms = list(self.rooms.values()), {}
        for room in rooms:
            await self._close_room(room)

    # ---------------------------------------------------------------- internals

    def _new_peer(self, room: RoomMedia, user_id: str, send: SendJson, ufrag: str) -> Peer:
        pc = RTCPeerConnection(self._rtc_config)
        peer = Peer(room, user_id, pc, send, ufrag)
        room.peers[user_id] = peer
        if room.ticker is None:
            room.ticker = asyncio.create_task(self._tick(room))

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self._on_track(peer, track)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            log.info("media.peer_state", room=room.id, user=user_id, state=pc.connectionState)
            if pc.connectionState == "connected" and not peer.closed:
                self._link(peer, pc.getTransceivers()[0].sender.transport)  # watch liveness
            if pc.connectionState == "failed" and room.peers.get(user_id) is peer:
                await self._drop_peer(peer)
                self._forget_if_idle(room)

        return peer

    def _add_slot(self, peer: Peer, direction: str) -> RTCRtpTransceiver:
        slot: Slot
        if self.settings.relay_mode == "fast":
            slot = Output()
            transceiver = peer.pc.addTransceiver(IdleTrack(slot), direction=direction)
            send_from_fanout(transceiver.sender, slot, lambda dtls: self._link(peer, dtls))
        else:
            slot = ForwardTrack(peer.room.counters, self.settings.relay_queue_packets)
            transceiver = peer.pc.addTransceiver(slot, direction=direction)
        transceiver.setCodecPreferences([OPUS])
        peer.slots.append(slot)
        return transceiver

    def _link(self, peer: Peer, dtls: RTCDtlsTransport) -> Link:
        """The participant's link on ``dtls`` (opened once DTLS is up, closed with the peer)."""
        link = peer.links.get(dtls)
        if link is None:
            link = peer.links[dtls] = open_link(dtls)
            if peer.closed:
                link.close()
        return link

    def _prepare_transceivers(self, peer: Peer, description: SessionDescription) -> None:
        """Create our transceivers for the client's new m-lines before aiortc would.

        aiortc creates a transceiver per unknown m-line inside setRemoteDescription, too late
        to restrict codecs; ours are Opus-only and carry a slot track.
        """
        known = {t.mid for t in peer.pc.getTransceivers()}
        spare = sum(1 for t in peer.pc.getTransceivers() if t.mid is None)
        new = [m for m in description.media if m.rtp.muxId not in known]
        for _ in range(max(0, len(new) - spare)):
            if peer.upstream is None:
                peer.upstream = self._add_slot(peer, "sendrecv")
            else:
                self._add_slot(peer, "sendonly")

    async def _first_offer(self, peer: Peer, sdp: str, description: SessionDescription) -> None:
        async with peer.lock:
            try:
                self._prepare_transceivers(peer, description)
                await self._apply_offer(peer, sdp)
            except Exception:
                await self._drop_peer(peer)
                raise
            self._assign(peer)
            await self._negotiate(peer)
        log.info("media.peer_joined", room=peer.room.id, user=peer.user_id)

    async def _offer(self, peer: Peer, sdp: str, description: SessionDescription) -> None:
        async with peer.lock:
            if peer.pc.signalingState == "have-local-offer":
                # Glare: the server is impolite. The client rolls back and answers ours.
                log.info("media.glare_ignored", room=peer.room.id, user=peer.user_id)
                return
            self._prepare_transceivers(peer, description)
            await self._apply_offer(peer, sdp)
            self._assign(peer)
            await self._negotiate(peer)

    async def _apply_offer(self, peer: Peer, sdp: str) -> None:
        pc = peer.pc
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:  # aiortc: ValueError, InvalidStateError, OperationError...
            raise ValidationFailed(f"offer refused: {exc}", code="bad_sdp") from exc
        await self._send(peer, events.RtcAnswer(sdp=pc.localDescription.sdp).wire())

    async def _answer(self, peer: Peer, sdp: str) -> None:
        async with peer.lock:
            if peer.pc.signalingState != "have-local-offer":
                raise Conflict("no offer of ours is waiting for an answer", code="no_offer")
            parse_sdp(sdp)
            try:
                await peer.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
            except Exception as exc:
                raise ValidationFailed(f"answer refused: {exc}", code="bad_sdp") from exc
            self._assign(peer)
            await self._negotiate(peer)

    async def _ice(self, peer: Peer, candidate: IceCandidate | None) -> None:
        if candidate is None or not candidate.candidate:
            return  # end of candidates: aiortc connects with what it has
        if candidate.sdpMid is None and candidate.sdpMLineIndex is None:
            raise ValidationFailed("a candidate needs sdpMid or sdpMLineIndex", code="bad_ice")
        try:
            ice = candidate_from_sdp(candidate.candidate.removeprefix("candidate:"))
        except Exception as exc:
            raise ValidationFailed(f"malformed ICE candidate: {exc}", code="bad_ice") from exc
        ice.sdpMid = candidate.sdpMid
        ice.sdpMLineIndex = candidate.sdpMLineIndex
        async with peer.lock:
            with contextlib.suppress(ValueError):  # after end-of-candidates: ignored
                await peer.pc.addIceCandidate(ice)

    def _on_track(self, peer: Peer, track: MediaStreamTrack) -> None:
        receiver = next(t.receiver for t in peer.pc.getTransceivers() if t.receiver.track is track)
        if peer.upstream is None or receiver is not peer.upstream.receiver:
            # One microphone per participant: anything else is dropped unread (never
            # decoded, so nothing piles up in aiortc's track queue).
            tap_receiver(receiver, lambda packet: None)
            return
        room = peer.room
        if not room.origin:
            # An edge forwards the origin's speakers only; a participant allowed to speak is
            # moved to the origin by the router (this is a microphone sent meanwhile).
            tap_receiver(receiver, lambda packet: None)
            return
        source = room.relay.source(peer.user_id)
        tap_receiver(receiver, source.on_rtp, decode=source.reencode)
        source.receiving = True
        if source.reencode:
            self._spawn(room, source.pump_frames(track))
        log.info("media.source", room=room.id, user=peer.user_id, allowed=source.allowed)
        self._sync_room(room)
        self._sources_changed(room)

    def _assign(self, peer: Peer, *, add: bool = True) -> None:
        """Point the peer's slots at the live sources; add slots if short.

        Slots (transceivers) are added only by the holder of the peer's lock between two
        negotiations (``add`` and a stable signaling state): aiortc fails an answer, or the
        answer to its offer, if a transceiver appeared while it was in flight. Others
        (``add=False``) leave it to the peer's renegotiation task, which takes the lock.
        """
        missing = peer.room.relay.assign(peer.user_id, peer.slots)
        if not missing or peer.closed:
            return
        if not add:
            self._schedule(peer)
            return
        if peer.pc.signalingState != "stable":
            return  # our offer awaits its answer: _answer comes back here
        for _ in range(missing):
            self._add_slot(peer, "sendonly")
        peer.room.relay.assign(peer.user_id, peer.slots)
        peer.wants_offer = True
        self._schedule(peer)

    def _sync_room(self, room: RoomMedia) -> None:
        """Sources changed: every peer's slots follow (new slots wait for its lock)."""
        for peer in list(room.peers.values()):
            self._assign(peer, add=False)

    def _schedule(self, peer: Peer) -> None:
        """Run a server offer for this peer in the background (callers must not wait)."""
        peer.dirty = True
        if peer.task is None or peer.task.done():
            peer.task = asyncio.create_task(self._renegotiate(peer))

    async def _renegotiate(self, peer: Peer) -> None:
        while peer.dirty and not peer.closed:
            peer.dirty = False
            try:
                async with peer.lock:
                    self._assign(peer)
                    await self._negotiate(peer)
            except Exception as exc:  # a closed connection or socket: nothing to redo
                log.warning("media.renegotiate_failed", user=peer.user_id, error=repr(exc))

    async def _negotiate(self, peer: Peer) -> None:
        """Send our offer if one is wanted and the connection is stable (lock held)."""
        pc = peer.pc
        if peer.closed or not peer.wants_offer or pc.signalingState != "stable":
            return
        peer.wants_offer = False
        offer = await pc.createOffer()
        sdp = keep_session_formats(offer.sdp, pc.remoteDescription.sdp)
        await pc.setLocalDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        publish = peer.room.relay.allowed.get(peer.user_id, False)
        message = events.RtcOffer(sdp=pc.localDescription.sdp, publish=publish)
        await self._send(peer, message.wire())

    async def _send(self, peer: Peer, message: dict[str, Any]) -> None:
        try:
            await asyncio.wait_for(peer.send(message), SEND_TIMEOUT)
        except Exception as exc:  # the socket is gone; the control plane cleans up
            log.info("media.send_failed", user=peer.user_id, error=repr(exc))

    async def _drop_peer(self, peer: Peer) -> None:
        """Close one peer connection now; its audio stops being forwarded at once."""
        room = peer.room
        if room.peers.get(peer.user_id) is peer:
            del room.peers[peer.user_id]
        if peer.closed:
            return
        peer.closed = True
        source = room.relay.sources.get(peer.user_id)
        room.relay.drop_source(peer.user_id)
        if source is not None and not source.remote:
            self._sources_changed(room)
        for slot in peer.slots:
            slot.stop()
        for link in peer.links.values():
            link.close()
        self._sync_room(room)
        if peer.task is not None and peer.task is not asyncio.current_task():
            peer.task.cancel()
        await peer.pc.close()
        log.info("media.peer_closed", room=room.id, user=peer.user_id)

    def _sources_changed(self, room: RoomMedia) -> None:
        if self.hooks is not None:
            self.hooks.sources_changed(room)

    def _forget_if_idle(self, room: RoomMedia) -> None:
        """Forget a room with no peers (and, on its origin, nobody allowed to publish who
        may still connect)."""
        if room.peers or (room.origin and any(room.relay.allowed.values())):
            return
        self._flush(room)
        if self.rooms.get(room.id) is not room:
            return
        del self.rooms[room.id]
        if room.ticker is not None:
            room.ticker.cancel()
            room.ticker = None
        if self.hooks is not None:
            self.hooks.room_idle(room)

    async def _close_room(self, room: RoomMedia) -> None:
        if room.ticker is not None:
            room.ticker.cancel()
            room.ticker = None
        for peer in list(room.peers.values()):
            await self._drop_peer(peer)
        for task in list(room.tasks):
            task.cancel()
        self._flush(room)

    def _flush(self, room: RoomMedia) -> None:
        forwarded, dropped = room.counters.take()
        if forwarded:
            metrics.FORWARDED_PACKETS.inc(forwarded)
        if dropped:
            metrics.DROPPED_PACKETS.inc(dropped)

    async def _tick(self, room: RoomMedia) -> None:
        """Every ~400 ms: speaking changes to the room, packet counts to Prometheus, gone
        participants closed."""
        while True:
            await asyncio.sleep(UPDATE_INTERVAL)
            self._flush(room)
            self._watch_links(room)
            # Speaking is computed once, on the origin (an edge's sources are remote).
            changed = room.detector.update(room.relay.speaking_windows())
            if changed is not None and room.origin:
                try:
                    await self._announce(room, events.Speaking(user_ids=list(changed)).wire())
                except Exception:  # never let one failure stop the room's ticker
                    log.exception("media.announce_failed", room=room.id)

    def _watch_links(self, room: RoomMedia) -> None:
        """Close participants that vanished without leaving, probe quiet ones, send the
        sender reports that are due."""
        now = time.monotonic()
        limit = self.settings.relay_silence_seconds
        probe_after = min(PROBE_AFTER, limit / 2)
        for peer in list(room.peers.values()):
            silent = peer.silent_for(now)
            if peer.closed:
                continue
            if silent > limit:
                log.info("media.peer_silent", room=room.id, user=peer.user_id, seconds=silent)
                self._spawn(room, self._drop_gone(peer))
                continue
            for link in peer.links.values():
                _quietly(link.follow)
                if silent > probe_after and now - link.probed_at >= PROBE_EVERY:
                    link.probed_at = now
                    _quietly(link.probe)
                if now >= link.report_at:
                    link.report_at = now + REPORT_SECONDS * (0.5 + random.random())
                    report = sender_reports(peer.outputs(link), link.cname)
                    if report:
                        link.send_rtcp(report)

    async def _drop_gone(self, peer: Peer) -> None:
        await self._drop_peer(peer)
        self._forget_if_idle(peer.room)

    def _spawn(self, room: RoomMedia, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        room.tasks.add(task)
        task.add_done_callback(room.tasks.discard)

    async def _announce(self, room: RoomMedia, event: dict[str, Any]) -> None:
        """A room event: through the control plane's channel (every participant on every
        node), or straight to this node's peers when no control plane runs (tests)."""
        publish = self.publish
        if publish is None:
            await asyncio.gather(*(self._send(p, event) for p in list(room.peers.values())))
        else:
            await publish(room.id, event)


def _quietly(action: Callable[[], None]) -> None:
    try:
        action()
    except Exception as exc:  # a connection closing under us: its state change follows
        log.info("media.probe_failed", error=repr(exc))


def _urls_start_with(entry: dict[str, Any], scheme: str) -> bool:
    urls = entry.get("urls", [])
    urls = [urls] if isinstance(urls, str) else urls
    return bool(urls) and all(str(u).startswith(scheme) for u in urls)
