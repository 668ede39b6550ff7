"""``python -m experiments check``: the sequence summary of a Bubbles and a similarity YAML."""

from __future__ import annotations

from experiments.__main__ import main


def test_check_command_summarises_the_sequence(make_config, results, capsys):
    path = make_config({"design": {"blocks": ["random"], "repeats": 2, "trials_per_block": 7}})
    assert main(["check", str(path), "--results", str(results)]) == 0
    out = capsys.readouterr().out
    assert f"{path}: paradigm bubbles, task gender, 17 trials" in out
    assert out.count("random") == 3  # practice + two blocks


def test_check_command_summarises_the_plan(make_similarity_config, similarity_results, capsys):
    assert main(["check", str(make_similarity_config()), "--results", str(similarity_results)]) == 0
    out = capsys.readouterr().out
    assert "paradigm similarity, task similarity, 26 trials" in out and "triplet" in out
