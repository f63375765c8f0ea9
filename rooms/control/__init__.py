"""The rooms control plane: who is in a room, their roles, and the events about them.

* ``rules``       who may do what: roles, caps and guarded transitions (pure)
* ``actions``     what a participant may send now, asked of the rules (pure)
* ``state``       a room as held: metadata, participant records, the part a change reads
* ``reducer``     a change applied to a room's state gives the new state and its events (pure)
* ``events``      every server -> client message, as a typed model
* ``messages``    every client -> server message, as a schema
* ``schemas``     HTTP bodies and answers
* ``presenters``  room state on the wire (``Room``, participants, actions)
* ``store``       rooms in Redis: reads, and each change one transaction with its events
* ``hub``         room events on per-room pub/sub channels, fanned out to local sockets
* ``presence``    grace periods and dead nodes (``server.leases``, ``server.nodes``)
* ``service``     ``RoomsService``: this process's store, hub and presence duties
* ``socket``      the room WebSocket, and its one mapping of errors to ``error`` events
* ``api``         HTTP endpoints
* ``share``, ``card``  share-link metadata and card images
* ``feature``     wiring into the app
"""
