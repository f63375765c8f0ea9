"""Share links, a feature of its own: the web client's pages carrying what their links
unfurl into, oEmbed, and the files that let mobile apps open the links.

* ``service``    ``ShareService``: which page a link names and what it unfurls into, asking
                 the feature it belongs to (``rooms.control.share``, ``stories.share``)
* ``pages``      the client's paths, answering ``index.html`` with the page's metadata
* ``api``        the oEmbed endpoint
* ``wellknown``  ``/.well-known`` files for iOS universal links and Android App Links
* ``feature``    ``ShareFeature``, built with the stories and rooms features

The vocabulary rooms and stories describe their links in stays beside it in ``server``:
``server.links`` (the paths) and ``server.unfurl`` (page metadata and how it renders),
since those features' own modules import it and this package imports them.
"""
