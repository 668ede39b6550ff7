"""The report's similarity section (``rsa:``): human RDMs, RSA bars with noise ceilings, comparisons."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.spatial.distance import pdist, squareform

from analysis.report.config import ReportConfig
from analysis.report.registry import sections_for
from analysis.report.run import run_report
from experiments.engine import run_session
from stimuli.contracts.config import from_dict
from stimuli.contracts.errors import InputError
from stimuli.contracts.prepared import load_prepared_set
from stimuli.contracts.provenance import read_provenance
from stimuli.contracts.rdm import rdm_path, save_rdms

pytestmark = pytest.mark.slow

CLOSE, FAR = "vgg16-imagenet-identity-s0", "vgg16-imagenet-identity-s1"


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """A results root with the ORL faces prepared at 32 px."""
    from stimuli.prepare import prepare_set

    root = tmp_path_factory.mktemp("results")
    prepare_set("orl", 32, "orl32", results=root, progress=False)
    return root


@pytest.fixture(scope="module")
def study(results, tmp_path_factory):
    """4 simulated observers x 24 triplets over 8 faces; model RDMs of two variants over the whole set."""
    root = tmp_path_factory.mktemp("study")
    config = root / "similarity.yaml"
    config.write_text(yaml.safe_dump({
        "paradigm": "similarity", "task": "similarity", "stimuli": "orl32", "faces": {"n_identities": 8},
        "design": {"trials": 24, "practice_trials": 1}, "simulated_observer": {"dims": 3, "embedding_seed": 4}}))
    for k in range(4):
        result = run_session(config, f"sim{k}", 1, observer="simulated", data_root=root / "simulated",
                             results=results, seed=10 + k, progress=False)
    embedding = json.loads(result.path.with_suffix(".json").read_text())["Observer"]["embedding"]
    ids = list(load_prepared_set("orl32", results).manifest.stimulus_id)
    rng = np.random.default_rng(0)
    close = rng.normal(size=(len(ids), 3))
    close[[ids.index(s) for s in embedding["stimulus_id"]]] = embedding["values"]  # this variant sees the truth
    far = rng.normal(size=(len(ids), 3))
    for variant, features in ((CLOSE, close), (FAR, far)):
        save_rdms(rdm_path(variant, "orl32", results), {"penultimate": squareform(pdist(features)),
                                                       "pool5": squareform(pdist(features + rng.normal(size=far.shape)))},
                  ids, {"variant": variant})
    return {"root": root, "results": results, "embedding": embedding}


def _config(path, study, **changes):
    data = {"stimuli": "orl32", "results": str(study["results"]), "title": "RSA test",
            "data": {"people": None, "simulated": str(study["root"] / "simulated")},
            "sections": ["overview", "rsa", "problems"],
            "rsa": {"permutations": 200, "bootstraps": 200, "split_half_splits": 3}}
    data.update(changes)
    path.write_text(yaml.safe_dump(data))
    return path


def test_similarity_section(study, tmp_path):
    messages = []
    out, built = run_report(_config(tmp_path / "c.yaml", study), tmp_path / "out", progress=False,
                            warn=messages.append)
    assert {s.key: s.status for s in built.sections} == {"overview": "ok", "rsa": "ok", "problems": "ok"}
    assert messages == []
    table = pd.read_csv(out / "tables" / "rsa.csv").set_index("model")
    assert list(table.index) == ["truth:embedding", f"{CLOSE}:penultimate", f"{CLOSE}:pool5",
                                 f"{FAR}:penultimate", f"{FAR}:pool5"]
    truth = table.loc["truth:embedding"]
    assert truth.rsa_group >= 0.9 and truth.p_perm < 0.05 and truth.n_subjects == 4 and truth.n_stimuli == 8
    assert truth.ceiling_lower <= truth.rsa_subjects <= truth.ceiling_upper
    assert table.loc[f"{CLOSE}:penultimate"].rsa_group == pytest.approx(truth.rsa_group)  # same distances
    assert table.loc[f"{FAR}:penultimate"].p_perm > 0.05
    assert (table.subjects_ci_low <= table.rsa_subjects).all() and (table.rsa_subjects <= table.subjects_ci_high).all()
    pairs = pd.read_csv(out / "tables" / "rsa_model_comparisons.csv")
    assert set(pairs.relation) == {"seed"} and len(pairs) == 2  # each RDM kind: s0 against s1
    best = pairs[pairs.model_a == f"{CLOSE}:penultimate"].iloc[0]
    assert best.difference > 0 and best.ci_low > 0
    reliability = pd.read_csv(out / "tables" / "rsa_reliability.csv")
    assert list(reliability.unit) == ["sim0", "sim1", "sim2", "sim3", "group"]
    with np.load(out / "maps" / "rdm_simulated.npz") as maps:
        assert maps["group"].shape == (8, 8) and maps["subjects"].shape == (4, 8, 8)
        assert list(maps["stimulus_id"]) == study["embedding"]["stimulus_id"] and str(maps["method"]) == "embedding"
    assert (out / "figures" / "rdm_simulated.png").stat().st_size > 5000
    assert (out / "figures" / "rsa_simulated.png").stat().st_size > 5000
    page = (out / "report.html").read_text()
    assert "Face similarity: people and models" in page and "figures/rsa_simulated.png" in page
    assert "the embedding the simulated observers were built on is recovered" in page
    inputs = read_provenance(out)["inputs"]
    assert str(rdm_path(CLOSE, "orl32", study["results"])) in inputs
    assert any(p.endswith("sub-sim0_ses-1_task-similarity_beh.tsv") for p in inputs)


def test_probability_rdms_and_kendall(study, tmp_path):
    config = _config(tmp_path / "c.yaml", study, rsa={"rdm": "probability", "method": "kendall_a", "permutations": 50,
                                                     "bootstraps": 0, "model_rdms": ["penultimate"]})
    out, built = run_report(config, tmp_path / "out", progress=False, warn=lambda m: None)
    table = pd.read_csv(out / "tables" / "rsa.csv")
    assert list(table.model) == ["truth:embedding", f"{CLOSE}:penultimate", f"{FAR}:penultimate"]
    assert set(table.method) == {"kendall_a"} and table.subjects_ci_low.isna().all()
    assert not (out / "tables" / "rsa_model_comparisons.csv").exists()  # no bootstrap, no comparisons


def test_the_section_is_optional_and_says_what_is_missing(study, tmp_path):
    without = from_dict(ReportConfig, {"stimuli": "orl32"}, "c.yaml")
    assert "rsa" not in [s.key for s in sections_for(without)]
    named = from_dict(ReportConfig, {"stimuli": "orl32", "sections": ["rsa"]}, "c.yaml")
    assert [s.key for s in sections_for(named)].count("rsa") == 1
    config = _config(tmp_path / "c.yaml", study, data={"people": None, "simulated": str(tmp_path)})
    out, built = run_report(config, tmp_path / "out", progress=False, warn=lambda m: None)
    section = next(s for s in built.sections if s.key == "rsa")
    assert section.status == "absent"
    assert "python -m experiments run experiments/similarity.yaml" in "".join(section.blocks)
    elsewhere = tmp_path / "results"
    (elsewhere / "stimuli").mkdir(parents=True)
    (elsewhere / "stimuli" / "orl32").symlink_to(study["results"] / "stimuli" / "orl32")
    config = _config(tmp_path / "d.yaml", study, results=str(elsewhere))
    out, built = run_report(config, tmp_path / "out2", progress=False, warn=lambda m: None)
    page = (out / "report.html").read_text()
    assert next(s for s in built.sections if s.key == "rsa").status == "ok"
    assert f"python -m model rdm --variant VARIANT --stimuli orl32 --out {elsewhere}" in page
    assert pd.read_csv(out / "tables" / "rsa.csv").model.tolist() == ["truth:embedding"]


@pytest.mark.parametrize("rsa, message", [
    ({"method": "kendall"}, "key 'rsa.method' must be one of 'spearman', 'kendall_a', 'pearson'"),
    ({"permutation": 10}, "unknown key 'rsa.permutation' (did you mean 'rsa.permutations'?)"),
    ({"task": "simi-larity"}, "key 'rsa.task' must be letters and digits"),
    ({"bootstraps": -1}, "key 'rsa.bootstraps' must be 0"),
    ({"model_rdms": []}, "key 'rsa.model_rdms' must list at least one RDM name"),
])
def test_bad_rsa_settings(rsa, message):
    with pytest.raises(InputError) as error:
        from_dict(ReportConfig, {"stimuli": "orl32", "rsa": rsa}, "c.yaml")
    assert message in str(error.value) and str(error.value).startswith("c.yaml: ")
