"""The paradigm registry: the built-in paradigms register by decorator; a YAML names one of them."""

from __future__ import annotations

import pytest

from experiments import paradigms
from experiments.bubbles import BubblesTask
from experiments.bubbles_config import BubblesConfig
from experiments.config import load_experiment
from experiments.paradigms import PARADIGMS, register_paradigm
from experiments.similarity import SimilarityTask
from experiments.similarity_config import SimilarityConfig
from stimuli.contracts.errors import InputError


def test_the_built_in_paradigms_are_registered_with_their_configs():
    assert PARADIGMS["bubbles"] is BubblesTask and BubblesTask.config_class is BubblesConfig
    assert PARADIGMS["similarity"] is SimilarityTask and SimilarityTask.config_class is SimilarityConfig
    assert all(task.paradigm == name for name, task in PARADIGMS.items())


def test_a_registered_paradigm_is_loadable(tmp_path, monkeypatch):
    monkeypatch.setitem(PARADIGMS, "bubbles2", PARADIGMS["bubbles"])
    path = tmp_path / "x.yaml"
    path.write_text("paradigm: bubbles2\ntask: gender\nstimuli: orl32\nresponses: {female: f, male: j}\n")
    with pytest.raises(InputError, match="key 'paradigm' must be one of 'bubbles'"):
        load_experiment(path)  # the config class checks its own paradigm value
    path.write_text("paradigm: nope\ntask: gender\nstimuli: orl32\n")
    with pytest.raises(InputError, match="key 'paradigm' must be one of bubbles, bubbles2, similarity, got 'nope'"):
        load_experiment(path)


def test_the_decorator_returns_the_class_unchanged(monkeypatch):
    monkeypatch.setattr(paradigms, "PARADIGMS", dict(PARADIGMS))
    class Demo:
        pass

    assert register_paradigm("demo")(Demo) is Demo and paradigms.PARADIGMS["demo"] is Demo
    assert "demo" not in PARADIGMS
