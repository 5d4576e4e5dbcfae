"""evaluate speaks of games as train does: a version trained on a single game (validated on its last rows) has
no game to be scored on, and evaluate says that, not "validated on 0 of its 1 games"."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.data import Dataset, Split
from trainer.evaluate import _version_rows
from worker.errors import ConfigError


def _one_game() -> Dataset:
    return Dataset(["a", "b", "c"], ["Cheer"], np.zeros((3, 1), dtype=np.float32), ["sample_chat"] * 3)


def test_a_version_of_one_game_has_nothing_held_out_and_evaluate_says_so() -> None:
    with pytest.raises(ConfigError) as error:
        _version_rows(_one_game(), Split(["sample_chat"], [], []), "test", 1)
    message = str(error.value)
    assert "trained on all 1 games of this data" in message and "last rows" in message
    assert "validated on 0" not in message and "more games" in message


def test_a_version_of_several_games_says_how_many_it_trained_and_validated_on() -> None:
    data = Dataset(["a", "b"], ["Cheer"], np.zeros((2, 1), dtype=np.float32), ["g1", "g2"])
    with pytest.raises(ConfigError, match="it trained on 1, validated on 1 of its 2 games"):
        _version_rows(data, Split(["g1"], ["g2"], []), "test", 1)
