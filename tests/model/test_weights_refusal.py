"""Checkpoints load only with weights_only=True: a pickled object, a non-state_dict or a
checkpoint for another architecture gets one clear error and nothing runs."""

from __future__ import annotations

import shutil

import pytest
import torch

from model import build_vgg16, load_variant
from model.train import train_variant
from model.weights import read_state_dict
from stimuli.contracts.errors import InputError


class Payload:
    """Unpickling this would create ``marker``: proof that no code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pickled_object_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"features.0.weight": torch.zeros(1), "extra": Payload(marker)}, path)
    with pytest.raises(InputError) as error:
        read_state_dict(path)
    message = str(error.value)
    assert message.startswith(f"{path}: refused") and "weights_only=True" in message and "\n" not in message
    assert not marker.exists()


@pytest.mark.parametrize(("content", "needle"), [
    ([1, 2, 3], "not a state_dict"),
    ({"a": 1.5}, "not a state_dict"),
    ({}, "not a state_dict"),
])
def test_not_a_state_dict(tmp_path, content, needle):
    path = tmp_path / "odd.pt"
    torch.save(content, path)
    with pytest.raises(InputError, match=needle):
        read_state_dict(path)


def test_garbage_and_missing_files(tmp_path):
    (tmp_path / "text.pt").write_text("not a checkpoint")
    with pytest.raises(InputError, match="not a readable torch weights file"):
        read_state_dict(tmp_path / "text.pt")
    with pytest.raises(InputError, match="weights file not found"):
        read_state_dict(tmp_path / "absent.pt")


def test_file_pretrain_from_another_architecture_is_refused(write_grid, results, tmp_path, variant_configs):
    other = tmp_path / "wider.pt"
    torch.save(build_vgg16(3, width=0.125).state_dict(), other)
    config = variant_configs(write_grid(grid={"pretrain": [f"file:{other}"]}))[0]
    assert config.variant == "vgg16-w0.0625-wider-identity-s0"
    with pytest.raises(InputError) as error:
        train_variant(config, results, device="cpu", progress=False)
    message = str(error.value)
    assert message.startswith(f"{other}: not a checkpoint for vgg16 width 0.0625")
    assert "'features.0.weight' has shape (8, 3, 3, 3), expected (4, 3, 3, 3)" in message
    bn = tmp_path / "bn.pt"
    torch.save(build_vgg16(3, width=0.0625, batch_norm=True).state_dict(), bn)
    with pytest.raises(InputError, match="not a checkpoint for vgg16 width 0.0625 .*unexpected features.1.bias"):
        train_variant(variant_configs(write_grid(grid={"pretrain": [f"file:{bn}"]}))[0], results,
                      device="cpu", progress=False)


def test_file_pretrain_of_the_same_architecture_loads_all_but_the_head(write_grid, results, tmp_path, variant_configs):
    torch.manual_seed(11)
    source = build_vgg16(5, width=0.0625)
    path = tmp_path / "lab_weights.pt"
    torch.save({"state_dict": source.state_dict()}, path)  # a wrapped state_dict is fine too
    config = variant_configs(write_grid(grid={"pretrain": [f"file:{path}"]}, train={"trainable": "head",
                                                                                     "epochs": 1}))[0]
    folder = train_variant(config, results, device="cpu", progress=False)
    trained = torch.load(folder / "model.pt", weights_only=True)
    assert torch.equal(trained["classifier.3.weight"], source.state_dict()["classifier.3.weight"])
    assert trained["classifier.6.weight"].shape[0] == 12  # a new head for the 12 identities


def test_load_variant_refuses_a_swapped_model_file(write_grid, results, tmp_path, variant_configs):
    config = variant_configs(write_grid(train={"epochs": 1}))[0]
    folder = train_variant(config, results, device="cpu", progress=False)
    shutil.copy(folder / "model.pt", tmp_path / "good.pt")
    torch.save(build_vgg16(12, width=0.125).state_dict(), folder / "model.pt")
    with pytest.raises(InputError, match=r"model.pt: not a checkpoint for vgg16-w0.0625-none-identity-s0 "
                                         r"\(12 classes\)"):
        load_variant(config.variant, results)
    marker = tmp_path / "pwned"
    torch.save({"x": Payload(marker)}, folder / "model.pt")
    with pytest.raises(InputError, match="refused"):
        load_variant(config.variant, results)
    assert not marker.exists()
    shutil.copy(tmp_path / "good.pt", folder / "model.pt")
    assert load_variant(config.variant, results).classes[:2] == ["p0", "p1"]


def test_a_pickled_resume_checkpoint_is_refused(write_grid, results, tmp_path, variant_configs):
    from model.variants import resume_dir

    config = variant_configs(write_grid(train={"epochs": 1}))[0]
    checkpoint = resume_dir(config.variant, results) / "checkpoint.pt"
    checkpoint.parent.mkdir(parents=True)
    torch.save({"format": 1, "x": Payload(tmp_path / "pwned")}, checkpoint)
    with pytest.raises(InputError, match="checkpoint.pt: refused"):
        train_variant(config, results, device="cpu", progress=False)
    assert not (tmp_path / "pwned").exists()
