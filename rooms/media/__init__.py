"""The media relay: an SFU on aiortc that forwards encoded Opus, never re-encoding it.

* ``port``         the seam the control plane calls (``MediaService``) and what it hands over
* ``service``      ``RelayMediaService``: one peer connection per participant, signaling
* ``relay``        one source per speaker, listener slots and their assignment
* ``fanout``       the fast path: one pass per packet over a room's listener outputs
* ``aiortc_seam``  the one module that reaches into aiortc, aioice and pylibsrtp internals
* ``speaking``     active-speaker detection from RTP audio levels (pure)
* ``nodes``        which node serves a room's media (claims in Redis)
* ``feature``      wiring into the app
"""
