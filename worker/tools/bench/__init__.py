"""``livetopic bench``: how much faster the worker is than the model card's one-comment-at-a-time code, and how
close it gets to the device's compute ceiling, on the same model and the same texts in one run.

Phases, each a typed record (:mod:`.records`): (1) label agreement of the worker's dtype with float32,
in-process; (2) baseline: the reference usage code, one comment at a time, float32; (3) the real worker
(``python -m worker worker``) against a real Redis, saturated; (4) the worker at half the saturated rate;
(5) the ceiling: the measured matrix-multiply rate in the worker's dtype over the model's FLOPs per comment.
"""
