"""Variant names, grid expansion and every config error: one line naming file and key."""

from __future__ import annotations

import pytest
import yaml

from model.config import expand_grid, load_grid, pretrain_token, select_variants
from model.train import main as train_main
from stimuli.contracts.errors import InputError
from stimuli.contracts.variants import VariantName, parse_variant_name


@pytest.mark.parametrize("name", [
    "vgg16-imagenet-gender-s0", "vgg16-bn-imagenet-identity-s12", "vgg16-w0.25-none-gender-s1",
    "vgg16-bn-w0.0625-faces-identity-s0", "vgg16-imagenet-faces-s0", "vgg16-vggface-gender-s2",
])
def test_variant_names_round_trip(name):
    spec = parse_variant_name(name)
    assert spec.name == name and str(spec) == name
    assert parse_variant_name(spec.name) == spec


def test_variant_spec_fields():
    spec = parse_variant_name("vgg16-bn-w0.25-imagenet-faces-s3")
    assert (spec.arch, spec.batch_norm, spec.width, spec.pretrain, spec.task, spec.seed) == \
        ("vgg16-bn", True, 0.25, "imagenet", "faces", 3)
    assert spec.is_face_source and spec.label_task == "identity"
    assert VariantName(False, 1.0, "none", "gender", 0).name == "vgg16-none-gender-s0"


@pytest.mark.parametrize(("name", "needle"), [
    ("vgg19-imagenet-gender-s0", "is not a variant name"),
    ("vgg16-imagenet-age-s0", "is not a variant name"),
    ("vgg16-imagenet-gender", "is not a variant name"),
    ("vgg16-w1-imagenet-gender-s0", "use 'vgg16-imagenet-gender-s0'"),
    ("vgg16-w0.50-none-gender-s0", "use 'vgg16-w0.5-none-gender-s0'"),
    ("vgg16-w2-none-gender-s0", "width must lie in (0, 1]"),
    ("vgg16-imagenet-gender-s01", "use 'vgg16-imagenet-gender-s1'"),
])
def test_bad_variant_names(name, needle):
    with pytest.raises(InputError, match=None) as error:
        parse_variant_name(name)
    assert needle in str(error.value) and "\n" not in str(error.value)


def test_grid_expands_in_order_with_face_sources_first(write_grid):
    path = write_grid(grid={"arch": ["vgg16", "vgg16-bn"], "width": [0.0625], "pretrain": ["none", "faces"],
                            "task": ["gender", "identity"], "seed": [0, 1]},
                      face_source={"pretrain": "none", "seed": 7, "train": {"trainable": "all", "epochs": 5}})
    variants = expand_grid(load_grid(path), str(path))
    names = [v.variant for v in variants]
    assert names[:2] == ["vgg16-w0.0625-none-faces-s7", "vgg16-bn-w0.0625-none-faces-s7"]
    assert len(names) == 2 + 2 * 2 * 2 * 2 and len(set(names)) == len(names)
    assert names[2:6] == ["vgg16-w0.0625-none-gender-s0", "vgg16-w0.0625-none-gender-s1",
                          "vgg16-w0.0625-none-identity-s0", "vgg16-w0.0625-none-identity-s1"]
    faces = next(v for v in variants if v.variant == "vgg16-bn-w0.0625-faces-gender-s1")
    assert faces.face_source == "vgg16-bn-w0.0625-none-faces-s7" and faces.pretrain == "faces"
    source = variants[0]
    assert source.train.epochs == 5 and source.train.trainable == "all"  # overrides
    assert source.train.batch_size == 8 and source.train.lr == 0.05  # the rest from the grid
    assert {v.split.seed for v in variants} == {0}  # one split seed for the whole grid
    assert select_variants(variants, ["vgg16-w0.0625-none-gender-s1"], "g")[0].variant == \
        "vgg16-w0.0625-none-gender-s1"


def test_file_pretrain_token():
    assert pretrain_token("file:/labs/weights/VGG-Face_converted.pt") == "vgg_face_converted"
    with pytest.raises(InputError, match="reserved token 'imagenet'"):
        pretrain_token("file:/x/imagenet.pt")
    with pytest.raises(InputError, match="unknown pretraining 'vggface'"):
        pretrain_token("vggface")


@pytest.mark.parametrize(("overrides", "needle"), [
    ({"train": {"trainable": "block7"}}, "key 'train.trainable' must be one of"),
    ({"train": {"lrr": 0.1}}, "unknown key 'train.lrr' (did you mean 'train.lr'?)"),
    ({"train": {"epochs": 0}}, "key 'train.epochs' must be at least 1"),
    ({"train": {"augment": {"max_shift": 0.7}}}, "key 'train.augment.max_shift' must lie in [0, 0.5)"),
    ({"train": {"batch_size": "big"}}, "key 'train.batch_size' should be int"),
    ({"input_size": 16}, "key 'input_size' must be at least 32"),
    ({"split": {"fractions": [0.5, 0.5]}}, "key 'split.fractions' must be three"),
    ({"split": {"identity": "identity"}}, "key 'split.identity' must be one of 'image'"),
    ({"grid": {"task": ["age"]}}, "key 'grid.task[0]' must be one of 'gender', 'identity'"),
    ({"grid": {"seed": [0, 0]}}, "key 'grid.seed' lists a value twice"),
    ({"grid": {"pretrain": ["imagenett"]}}, "unknown pretraining 'imagenett'"),
    ({"grid": {"pretrain": ["faces"]}}, "'pretrain: faces' needs a 'face_source' section"),
    ({"grid": {"pretrain": ["imagenet"], "width": [0.5]}}, "ImageNet weights exist only for width 1.0"),
    ({"grid": {"arch": ["vgg16-bn"], "width": [1.0], "pretrain": ["imagenet"]}, "imagenet_source": "onnx"},
     "onnx holds plain vgg16 weights"),
    ({"face_source": {"pretrain": "faces"}}, "key 'face_source.pretrain' cannot be 'faces'"),
])
def test_config_errors_name_file_and_key(write_grid, overrides, needle):
    path = write_grid(**overrides)
    with pytest.raises(InputError) as error:
        expand_grid(load_grid(path), str(path))
    message = str(error.value)
    assert needle in message and str(path) in message and "\n" not in message


def test_face_source_train_overrides_are_validated(write_grid):
    path = write_grid(grid={"pretrain": ["faces"]}, face_source={"pretrain": "none", "train": {"trainable": "everything"}})
    with pytest.raises(InputError, match="key 'face_source.train.trainable' must be one of"):
        expand_grid(load_grid(path), str(path))


def test_cli_bad_input_is_one_line_and_exit_2(write_grid, capsys, tmp_path):
    path = write_grid()
    with pytest.raises(SystemExit) as code:
        train_main([str(path), "--only", "vgg16-w0.0625-none-gendr-s0"])
    assert code.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "did you mean 'vgg16-w0.0625-none-identity-s0'" in err
    with pytest.raises(SystemExit):
        train_main([str(tmp_path / "absent.yaml")])
    assert "config file not found" in capsys.readouterr().err


def test_missing_prepared_set_names_the_command_that_makes_it(write_grid, tmp_path, capsys):
    path = write_grid(stimuli="orl96")
    with pytest.raises(SystemExit) as code:
        train_main([str(path), "--out", str(tmp_path / "res")])
    assert code.value.code == 2
    err = capsys.readouterr().err
    assert f"python -m stimuli prepare --faces orl --size 96 --name orl96 --out {tmp_path / 'res'}" in err
    assert not (tmp_path / "res" / "models").exists()  # nothing half-written


def test_list_prints_the_grid(write_grid, capsys):
    path = write_grid(grid={"task": ["gender", "identity"], "seed": [0, 1]})
    assert train_main([str(path), "--list"]) == 0
    assert capsys.readouterr().out.split() == [
        "vgg16-w0.0625-none-gender-s0", "vgg16-w0.0625-none-gender-s1",
        "vgg16-w0.0625-none-identity-s0", "vgg16-w0.0625-none-identity-s1"]


def test_packaged_demo_config_is_valid():
    from model.variants import packaged_configs

    configs = {p.name: p for p in packaged_configs()}
    assert "demo.yaml" in configs
    variants = expand_grid(load_grid(configs["demo.yaml"]), "demo.yaml")
    names = [v.variant for v in variants]
    assert names[0].endswith("-faces-s0")  # the face-pretraining source trains first
    assert {parse_variant_name(n).pretrain for n in names[1:]} == {"imagenet", "faces"}
    assert {parse_variant_name(n).task for n in names[1:]} == {"gender", "identity"}
    assert {parse_variant_name(n).seed for n in names[1:]} == {0, 1} and len(names) == 9
    assert yaml.safe_load(configs["demo.yaml"].read_text())["imagenet_source"] == "onnx"
    # more than a linear readout: every variant trains conv block 5 and every FC layer, so the
    # onnx-sourced FC layers (no ImageNet FC weights offline) are trained, never frozen random
    from model.architecture import TRAINABLE

    deep_enough = TRAINABLE[TRAINABLE.index("block5"):]
    assert all(v.train.trainable in deep_enough for v in variants), [v.train.trainable for v in variants]
