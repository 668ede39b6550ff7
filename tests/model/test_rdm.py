"""Model RDMs (``python -m model rdm``) and the ``model:VARIANT`` similarity observer, on tiny variants
trained here through the model package's own API (width 1/16, 32 px, 1 epoch, 10 ORL identities x 5)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from experiments.engine import load_task, run_session
from stimuli.contracts.prepared import load_prepared_set, write_prepared_set
from stimuli.contracts.provenance import read_provenance
from stimuli.contracts.rdm import check_rdm, load_rdms, rdm_path
from stimuli.contracts.trials import SIMILARITY_COLUMNS, read_trials
from stimuli.prepare import prepare_set

pytestmark = pytest.mark.slow
torch = pytest.importorskip("torch")

IDENTITY = "vgg16-w0.0625-none-identity-s0"
GENDER = "vgg16-w0.0625-none-gender-s0"


@pytest.fixture(scope="module")
def orl32(tmp_path_factory):
    """A results root with the ORL faces prepared at 32 px."""
    root = tmp_path_factory.mktemp("results")
    prepare_set("orl", 32, "orl32", results=root, progress=False)
    return root


@pytest.fixture(scope="module")
def trained(orl32, tmp_path_factory):
    """A results root with set 'orl10' (identities s1..s10 x 5 images) and two tiny variants."""
    from model.train import train_grid

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny convolutions on a shared 2-core machine: one thread is fastest
    root = tmp_path_factory.mktemp("rdm_results")
    full = load_prepared_set("orl32", orl32)
    keep = full.manifest[full.manifest.identity.isin([f"s{i}" for i in range(1, 11)])
                         & full.manifest.stimulus_id.str[-2:].astype(int).le(5)]
    write_prepared_set(root / "stimuli" / "orl10", full.images[keep.index.to_numpy()],
                       keep.drop(columns="file"), background=full.background)
    grid = root / "grid.yaml"
    grid.write_text(yaml.safe_dump({
        "stimuli": "orl10", "input_size": 32, "split": {"seed": 0, "fractions": [0.6, 0.2, 0.2]},
        "grid": {"width": [0.0625], "pretrain": ["none"], "task": ["identity", "gender"], "seed": [0]},
        "train": {"trainable": "all", "epochs": 1, "batch_size": 16, "lr": 0.05, "dropout": 0.0,
                  "optimizer": "sgd", "schedule": "cosine"}}))
    train_grid(grid, root, device="cpu", progress=False)
    yield root
    torch.set_num_threads(threads)


def test_rdm_command_writes_every_kind(trained, capsys):
    from model.rdm import main

    assert main(["--variant", IDENTITY, "--stimuli", "orl10", "--out", str(trained), "--batch-size", "16"]) == 0
    assert "6 RDM(s) over 50 stimuli" in capsys.readouterr().out
    rdms = load_rdms(IDENTITY, "orl10", trained)
    assert rdms.names == ["pool3", "pool4", "pool5", "fc6", "penultimate", "confusion"]
    stim = load_prepared_set("orl10", trained)
    assert list(rdms.stimulus_id) == list(stim.manifest.stimulus_id)
    for name, rdm in rdms.rdms.items():
        check_rdm(rdm, name)
        assert rdm.shape == (50, 50) and np.ptp(rdm) > 0
    assert rdms.meta["layers"]["penultimate"] == "classifier.4" and rdms.meta["layers"]["pool5"] == "features.30"
    runs = read_provenance(rdm_path(IDENTITY, "orl10", trained).parent)["runs"]
    assert runs["orl10"]["output"] == "orl10.npz"


def test_activation_and_confusion_rdms_match_an_independent_computation(trained):
    from model import load_variant
    from model.architecture import split_at

    rdms = load_rdms(IDENTITY, "orl10", trained)
    loaded = load_variant(IDENTITY, trained, "cpu")
    stim = load_prepared_set("orl10", trained)
    prefix, _ = split_at(loaded.net, "classifier.5")  # everything up to the penultimate ReLU
    with torch.no_grad():
        features = prefix(loaded.to_input(stim.images)).numpy().astype(np.float64)
    z = (features - features.mean(1, keepdims=True)) / features.std(1, keepdims=True)
    expected = 1 - (z @ z.T) / features.shape[1]
    np.fill_diagonal(expected, 0)
    assert np.allclose(rdms.rdms["penultimate"], expected, atol=1e-4)
    p = torch.softmax(torch.from_numpy(loaded.predict_logits(stim.images)).double(), 1).numpy()
    column = [loaded.classes.index(i) for i in stim.manifest.identity]
    i, j = 3, 17
    assert rdms.rdms["confusion"][i, j] == pytest.approx(1 - (p[i, column[j]] + p[j, column[i]]) / 2, abs=1e-5)


def test_relevance_rdm_and_errors(trained, capsys):
    from model.rdm import main
    from stimuli.contracts.relevance import SET_HASH_KEY, save_relevance

    with pytest.raises(SystemExit) as stop:
        main(["--variant", GENDER, "--stimuli", "orl10", "--out", str(trained), "--kinds", "relevance"])
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and err.count("\n") == 0
    assert "make them with: python -m model explain --variant " + GENDER in err
    maps = np.random.default_rng(0).normal(size=(50, 32, 32)).astype(np.float32)
    prepared = load_prepared_set("orl10", trained)
    ids = prepared.manifest.stimulus_id
    save_relevance(trained / "relevance" / GENDER / "orl10.npz", maps[::-1], ids[::-1], np.zeros(50), np.zeros(50),
                   np.ones(50), {"variant": GENDER, "composite": "epsilon_plus_flat",
                                 SET_HASH_KEY: prepared.content_hash})
    assert main(["--variant", GENDER, "--stimuli", "orl10", "--out", str(trained), "--kinds", "relevance"]) == 0
    rdm = load_rdms(GENDER, "orl10", trained).rdms["relevance"]
    expected = 1 - np.corrcoef(maps.reshape(50, -1))
    np.fill_diagonal(expected, 0)
    assert np.allclose(rdm, expected, atol=1e-5)  # aligned by stimulus id, not file order
    for args, message in ((["--kinds", "confusion"], "a confusion RDM needs an identity variant; " + GENDER),
                          (["--layers", "pool9"], "unknown layer 'pool9' (use pool1, pool2"),
                          (["--stimuli", "nope"], "python -m stimuli prepare")):
        base = ["--variant", GENDER, "--stimuli", "orl10", "--out", str(trained)]
        with pytest.raises(SystemExit) as stop:
            main(base + args)
        err = capsys.readouterr().err.strip()
        assert stop.value.code == 2 and err.count("\n") == 0 and message in err, err


def test_model_observer_chooses_by_penultimate_distances(trained, tmp_path):
    from model.rdm import main

    main(["--variant", IDENTITY, "--stimuli", "orl10", "--out", str(trained), "--layers", "penultimate"])
    config = tmp_path / "similarity.yaml"
    config.write_text(yaml.safe_dump({
        "paradigm": "similarity", "task": "similarity", "stimuli": "orl10",
        "faces": {"n_identities": 6}, "design": {"trials": 20, "practice_trials": 0}}))
    result = run_session(config, "cnn", 1, observer=f"model:{IDENTITY}", data_root=tmp_path / "sim",
                         results=trained, seed=3, progress=False)
    sidecar = json.loads(result.path.with_suffix(".json").read_text())
    observer = sidecar["Observer"]
    assert observer["kind"] == "model" and observer["variant"] == IDENTITY
    assert observer["layer_module"] == "classifier.4" and observer["metric"] == "correlation"
    ids = load_task(config, trained).ids
    rdm = load_rdms(IDENTITY, "orl10", trained).subset(ids).rdms["penultimate"]
    index = {s: i for i, s in enumerate(ids)}
    table = read_trials(result.path, required=tuple(SIMILARITY_COLUMNS))
    assert len(table) == 20
    for _, row in table.iterrows():
        a, b, c = (index[row[f"stimulus_{k}"]] for k in (1, 2, 3))
        odd = {(a, b): c, (a, c): b, (b, c): a}
        assert index[row.response] == odd[min(odd, key=lambda p: rdm[p])]
