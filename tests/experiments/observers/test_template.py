"""The template observer: it reads only its region; its noise is calibrated to the full-view accuracy."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.observers import TemplateObserver
from experiments.task import Trial
from stimuli.bubbles import bubbles_mask, compose, sample_centres
from stimuli.contracts.errors import InputError
from stimuli.contracts.prepared import load_prepared_set
from stimuli.regions import region_mask


@pytest.fixture(scope="module")
def faces(results):
    stim = load_prepared_set("orl32", results)
    return stim.images, list(stim.manifest.gender), stim.background


def test_template_decision_reads_only_the_region(faces):
    images, labels, background = faces
    observer = TemplateObserver(images, labels, ["female", "male"], background, "eyes", seed=1)
    region = region_mask("eyes", images.shape[1:])
    rng = np.random.default_rng(0)
    mask = bubbles_mask(images.shape[1:], sample_centres(images.shape[1:], 30, rng), 2.0)
    stimulus = compose(images[3], mask, background)
    noise = observer.noise_for(17)
    evidence = observer.evidence(stimulus, mask, noise)
    other_stimulus, other_mask = stimulus.copy(), mask.copy()
    other_stimulus[~region] = rng.random(int((~region).sum()))
    other_mask[~region] = rng.random(int((~region).sum()))
    assert np.array_equal(observer.evidence(other_stimulus, other_mask, noise), evidence)
    inside = stimulus.copy()
    inside[region] = rng.random(int(region.sum()))
    assert not np.array_equal(observer.evidence(inside, mask, noise), evidence)
    assert np.array_equal(observer.noise_for(17), noise) and not np.array_equal(observer.noise_for(18), noise)


@pytest.mark.parametrize(("templates", "classes"), [("exemplars", ["female", "male"]),
                                                    ("means", ["s1", "s2", "s3", "s4"])])
def test_template_noise_is_calibrated_and_accuracy_grows_with_bubbles(faces, results, templates, classes):
    images, labels, background = faces
    if classes[0] == "s1":  # identity: four people
        identity = np.array(load_prepared_set("orl32", results).manifest.identity)
        keep = np.isin(identity, classes)
        images, labels = images[keep], list(identity[keep])
    target = 0.9
    observer = TemplateObserver(images, labels, classes, background, "box:0,1,0,1",
                                templates=templates, full_view_accuracy=target, seed=2)
    assert abs(observer.calibrated_accuracy - target) < 0.02 and observer.noise_sd > 0
    rng = np.random.default_rng(5)
    truth = np.array(labels)
    members = [np.flatnonzero(truth == c) for c in classes]

    def accuracy(n_bubbles, trials=200):
        hits = 0
        for t in range(trials):
            index = rng.choice(members[t % len(classes)])
            mask = (np.ones(images.shape[1:], np.float32) if n_bubbles is None else
                    bubbles_mask(images.shape[1:], sample_centres(images.shape[1:], n_bubbles, rng), 2.0))
            stimulus = compose(images[index], mask, background)
            trial = Trial({"trial": 10_000 + t}, [stimulus], {}, payload={"mask": mask})
            hits += observer.respond([trial])[0].response == truth[index]
        return hits / trials

    full, few, none = accuracy(None), accuracy(3), accuracy(0)
    assert abs(full - target) < 0.06
    assert abs(none - 1 / len(classes)) < 0.1 and none < few < full


def test_unreachable_accuracy_is_one_clear_error(faces):
    images, labels, background = faces
    with pytest.raises(InputError, match="even without noise it is below 99% correct"):
        TemplateObserver(images, labels, ["female", "male"], background, "mouth", templates="means",
                         full_view_accuracy=0.99)
