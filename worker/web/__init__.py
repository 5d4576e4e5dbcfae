"""What people look at: the live dashboard (``livetopic dashboard``) and the post-game report
(``livetopic report``). Imports leaves, ``model`` (to score a chat file for a report) and ``streams`` (every
Redis read goes through :mod:`worker.streams.reading`); never ``service``, ``tools`` or ``cli``."""
