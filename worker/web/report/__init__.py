"""``livetopic report``: the post-game view of a game's topic heat (timeline, peaks with their top comments,
shares), as a PNG (matplotlib, the ``[report]`` extra) or one self-contained HTML file."""
