"""Room recording: one mix per room, live HLS while the room is live, a replay after it.

``mixer`` (pure numpy) mixes the speakers' decoded audio on one timeline, ``encoder`` (PyAV)
decodes each speaker's Opus once and encodes the mix once into AAC-LC in fragmented MP4,
``playlist`` writes HLS playlist text, ``store`` keeps the recording records in Redis,
``service`` runs the recorders and the expiry sweeper, ``api`` serves it all; see
docs/recording.md.
"""
