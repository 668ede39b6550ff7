"""Observer groups from the trial files' sidecars, and which group stands for people."""

from __future__ import annotations

from fake_study import TEMPLATE, model_observer, simulate_session, write_session

from analysis.report.config import DataRoots, ReportConfig
from analysis.report.context import ReportContext, find_observer_groups
from stimuli.contracts.trials import sidecar_path


def test_groups_follow_the_sidecar_observer(tmp_path):
    people, simulated = tmp_path / "people", tmp_path / "simulated"
    rows = simulate_session(1, trials=3, conditions=("random",))
    write_session(people, "01", 1, rows, {"kind": "human", "spec": "human"})
    write_session(people, "02", 1, rows, {"kind": "human", "spec": "human"})
    write_session(simulated, "01", 1, rows, TEMPLATE)
    write_session(simulated, "01", 2, rows, TEMPLATE)  # a second session of the same observer
    write_session(simulated, "02", 1, rows, {"kind": "template", "spec": "template:mouth"})
    write_session(simulated, "m1", 1, rows, model_observer("vgg16-faces-gender-s1"))
    write_session(simulated, "m2", 1, rows, model_observer("vgg16-faces-gender-s1"))
    write_session(simulated, "x", 1, rows, TEMPLATE, task="identity")  # another task
    sidecar_path(write_session(simulated, "03", 1, rows, TEMPLATE)).unlink()
    write_session(simulated, "01", 3, rows, {"kind": "model", "spec": "model:vgg16-imagenet-gender-s0"})
    messages = []
    groups = find_observer_groups(DataRoots(str(people), str(simulated)), "gender", messages.append)
    found = [(g.key, g.kind, g.participants, g.variant) for g in groups]
    assert found == [
        ("people", "people", ["01", "02"], None),
        ("model-vgg16-faces-gender-s1", "model", ["m1", "m2"], "vgg16-faces-gender-s1"),
        ("model-vgg16-imagenet-gender-s0", "model", ["01"], "vgg16-imagenet-gender-s0"),
        ("template", "template", ["01"], None),
        ("template-mouth", "template", ["02"], None),
        ("unknown", "unknown", ["03"], None),
    ]
    assert [g.label for g in groups][1:5] == ["model observer vgg16-faces-gender-s1",
                                              "model observer vgg16-imagenet-gender-s0", "template observers",
                                              "template observers (mouth)"]
    # sub-01's sessions of two observers go to two groups, file by file
    assert [len(g.files) for g in groups] == [2, 2, 1, 2, 1, 1]
    assert groups[2].files[0].endswith("sub-01_ses-3_task-gender_beh.tsv")
    assert len(messages) == 1
    assert "sub-03_ses-1_task-gender_beh.json: no sidecar; the observer is unknown" in messages[0]


def test_the_reference_group_is_found_by_key_or_kind(tmp_path):
    simulated = tmp_path / "simulated"
    rows = simulate_session(1, trials=3, conditions=("random",))
    write_session(simulated, "01", 1, rows, {"kind": "template", "spec": "template:eyes"})
    write_session(simulated, "02", 1, rows, {"kind": "template", "spec": "template:mouth"})

    def reference(name):
        config = ReportConfig(stimuli="tiny", data=DataRoots(None, str(simulated)))
        config.alignment.reference = name
        messages = []
        return ReportContext(config, tmp_path, warn=messages.append).reference_key("gender"), messages

    assert reference("template-mouth") == ("template-mouth", [])
    key, messages = reference("template")
    assert key == "template-eyes" and messages == [
        "alignment.reference 'template' matches several observer groups of task gender (template-eyes, "
        "template-mouth); using template-eyes"]
    assert reference("people") == (None, [])
