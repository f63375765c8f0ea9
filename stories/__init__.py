"""Stories: 24-hour posts, the tray, seen-by lists, replies, reactions and audiences.

* ``api``         HTTP routes: parse, call one use case, present
* ``service``     ``StoriesService``: every use case, who may do it, what it builds, the clock
* ``presenters``  domain objects -> wire models (``schemas``)
* ``rules``       pure decisions: audiences, the tray order, expiry, cursors
* ``model``       dataclasses and their Redis encodings
* ``store``       ``StoryStore``: Redis keys, scripts and pipelines
* ``upload``, ``media``, ``storage``, ``signing``: uploads in, clean media stored, served by
  signed URL
* ``share``       what a story's share link unfurls into
* ``sweeper``     the expiry sweeper
* ``feature``     ``StoriesFeature``: wiring
"""
