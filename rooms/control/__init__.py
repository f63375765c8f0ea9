"""The rooms control plane.

* ``rules``     who may do what: roles, caps and guarded transitions (pure)
* ``schemas``   HTTP bodies and answers, and every client WebSocket message
* ``store``     rooms in Redis: every state change is one transaction with its events
* ``hub``       room events on per-room pub/sub channels, fanned out to local sockets
* ``presence``  grace periods and dead nodes
* ``service``   ``RoomsService``: this process's store, hub and presence duties
* ``socket``    the room WebSocket
* ``api``       HTTP endpoints
* ``share``, ``card``  share-link metadata and card images
* ``feature``   wiring into the app
"""
