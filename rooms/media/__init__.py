"""The media relay: an SFU on aiortc that forwards encoded Opus, never re-encoding it, for one
room over as many processes and machines as its audience needs.

* ``port``         the seam the control plane calls (``MediaService``) and what it hands over
* ``router``       the port on every process: places each participant's media on a node and
                   routes their signaling there (through Redis when it is another process)
* ``placement``    where media goes, by the nodes' published load (pure)
* ``node``         this process as a media node: origin or edge of each room it serves
* ``directory``    Redis: each room's origin lease, trunk key and sources, its edges
* ``bus``          messages between nodes (Redis pub/sub): inboxes and room channels
* ``trunk``        the origin-to-edge link: RTP over UDP, SRTP under a per-room key
* ``service``      ``RelayMediaService``: this node's peer connections, signaling, slots
* ``signaling``    ``rtc.*`` message schemas and SDP checks (pure)
* ``relay``        one source per speaker (local or from the trunk), listener slots
* ``fanout``       the fast path: one pass per packet over a room's listener outputs
* ``aiortc_seam``  the one module that reaches into aiortc, aioice and pylibsrtp internals
* ``speaking``     active-speaker detection from RTP audio levels (pure)
* ``feature``      wiring into the app
"""
