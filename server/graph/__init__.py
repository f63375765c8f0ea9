"""The social graph, a feature of its own: follows, blocks and close friends.

* ``store``    the graph in Redis (``Graph``): what other features ask
* ``rules``    pure rules other features share (``other_user``)
* ``schemas``  wire shapes, user pages included (other features list users too)
* ``api``      the HTTP endpoints
* ``feature``  wiring into the app
"""
