"""The report's QC section on small fake data roots: the table and figures, exclusions left out
of the group statistics, the order of sections by what the data hold (people only, models
only), and the self-contained page (``--embed``)."""

from __future__ import annotations

import base64
import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from fake_study import (
    CLASSES,
    VARIANTS,
    make_relevance,
    make_set,
    simulate_session,
    write_config,
    write_session,
)

from analysis.report.page import MODELS_FIRST, PEOPLE_FIRST
from analysis.report.registry import SECTIONS
from analysis.report.run import main, run_report
from stimuli.contracts.trials import sidecar_path

pytestmark = pytest.mark.slow

HUMAN = {"kind": "human", "spec": "human"}


def _events(trial_file: Path, n_frames: int, dropped_every: int | None) -> None:
    """A frame-interval file in the contract's layout: 60 Hz flips, every ``dropped_every``-th dropped."""
    lines = ["onset\tduration\ttrial_type\ttrial\tdropped"]
    onset = 0.0
    for i in range(n_frames):
        dropped = int(dropped_every is not None and i % dropped_every == 0)
        duration = (2 if dropped else 1) / 60
        lines.append(f"{onset:.5f}\t{duration:.5f}\tframe\t{1 + i // 30}\t{dropped}")
        onset += duration
    trial_file.with_name(trial_file.name.replace("_beh.tsv", "_events.tsv")).write_text("\n".join(lines) + "\n")


def _people_study(root: Path) -> dict[str, Path]:
    """People only: 01 and 04 good (60 Hz, 0.5% dropped), 02 drops 10% of its frames, 03 answers
    at chance (every other answer wrong, no frame file: not measured); no relevance maps."""
    results, people = root / "results", root / "people"
    make_set(results)
    for i, participant in enumerate(("01", "02", "03", "04")):
        rows = simulate_session(400 + i, trials=90, conditions=("random", "guided"))
        if participant == "03":
            for j, row in enumerate(rows):
                row["correct"] = j % 2
                row["response"] = row["truth"] if j % 2 else CLASSES[1 - CLASSES.index(row["truth"])]
        path = write_session(people, participant, 1, rows, HUMAN)
        info = json.loads(sidecar_path(path).read_text())
        info.update(Responses={"female": "f", "male": "m"}, Staircase={"target": 0.75})
        sidecar_path(path).write_text(json.dumps(info))
        if participant != "03":
            _events(path, 3000, 10 if participant == "02" else 200)
    return {"root": root, "results": results, "simulated": root / "simulated", "people": people}


def _config(path: Path, study: dict[str, Path], **overrides) -> Path:
    config = write_config(path, study, **overrides)
    data = yaml.safe_load(config.read_text())
    data["data"]["people"] = str(study["root"] / "people")
    data["alignment"]["reference"] = "people"
    data["models"].pop("evaluate")
    data["exclusion"] = {"min_trials": 20}
    data.update({k: v for k, v in overrides.items() if not isinstance(v, dict)})
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    return config


@pytest.fixture(scope="module")
def people_report(tmp_path_factory):
    root = tmp_path_factory.mktemp("people")
    study = _people_study(root)
    messages = []
    out, built = run_report(_config(root / "config.yaml", study), root / "out", progress=False,
                            warn=messages.append)
    return {"out": out, "report": built, "messages": messages, "study": study}


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images, self.targets, self.sections = [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        if tag == "section":
            self.sections.append(attrs["id"])
        for key in ("href", "src"):
            if key in attrs:
                self.targets.append(attrs[key])


def _parse(page: str) -> _Links:
    links = _Links()
    links.feed(page)
    return links


def test_the_qc_table_figures_and_exclusions_of_people(people_report):
    out = people_report["out"]
    qc = pd.read_csv(out / "tables" / "qc.csv", dtype={"participant": str}).set_index("participant")
    assert list(qc.index) == ["01", "02", "03", "04"] and set(qc.observers) == {"people"}
    assert qc.loc["01", "n_trials"] == 180 and qc.loc["01", "n_frames"] == 3000
    assert qc.loc["01", "frame_interval_median_ms"] == pytest.approx(16.67)
    assert qc.loc["02", "dropped_frame_share"] == pytest.approx(0.1) and qc.loc["01", "dropped_frame_share"] == 0.005
    assert np.isnan(qc.loc["03", "frame_interval_median_ms"]) and qc.loc["03", "accuracy"] == 0.5
    assert qc.excluded.tolist() == [False, True, True, False]
    assert "10.0% of frames dropped" in qc.loc["02", "reasons"] and "not above chance 0.5" in qc.loc["03", "reasons"]
    # left out of the group statistics, and listed
    summary = pd.read_csv(out / "tables" / "ci_summary.csv")
    assert summary.n_participants.tolist() == [2, 2]
    with np.load(out / "maps" / "ci_group_gender_random.npz") as maps:
        assert maps["participants"].tolist() == ["01", "04"]
    exclusions = pd.read_csv(out / "tables" / "ci_exclusions.csv", dtype={"participant": str})
    assert set(exclusions[exclusions["where"] == "qc"].participant) == {"02", "03"}
    assert len(pd.read_csv(out / "tables" / "qc_exclusions.csv")) == 2
    trace = pd.read_csv(out / "tables" / "qc_staircase.csv", dtype={"participant": str})
    assert len(trace) == 4 * 180 and set(trace.staircase) == {"random", "guided"}
    figure = out / "figures" / "qc_gender_people.png"
    assert figure.stat().st_size > 20000
    page = (out / "report.html").read_text()
    assert 'src="figures/qc_gender_people.png"' in page and "not measured" in page
    assert sum("excluded by the QC rules" in m for m in people_report["messages"]) == 2


def test_a_people_only_report_opens_with_its_people(people_report):
    sections = _parse((people_report["out"] / "report.html").read_text()).sections
    assert sections[:5] == list(PEOPLE_FIRST) == ["qc", "ci", "conditions", "overview", "findings"]
    assert set(sections) == {s.key for s in SECTIONS.values() if not s.optional}
    assert sections.index("relevance") > sections.index("findings")


def test_a_model_only_report_opens_with_its_models(tmp_path):
    results = tmp_path / "results"
    make_set(results)
    make_relevance(results, variants=VARIANTS[:2], baselines=False)
    study = {"root": tmp_path, "results": results, "simulated": tmp_path / "simulated"}
    out, built = run_report(_config(tmp_path / "config.yaml", study), tmp_path / "out", progress=False,
                            warn=lambda m: None)
    sections = [s.key for s in built.sections]
    assert sections[:5] == list(MODELS_FIRST) and sections.index("qc") > sections.index("overview")
    assert {s.key: s.status for s in built.sections}["qc"] == "absent"
    assert _parse((out / "report.html").read_text()).sections == sections


def test_both_people_and_models_keep_the_findings_first(report):
    sections = [s.key for s in report["report"].sections]
    assert sections[0] == "findings" and sections.index("qc") < sections.index("ci")
    qc = pd.read_csv(report["out"] / "tables" / "qc.csv", dtype={"participant": str})
    assert len(qc) == 5 and not qc.excluded.any()  # 4 template observers and a model observer, all kept
    assert qc.frame_interval_median_ms.isna().all()  # no screen: not measured


def test_embed_writes_one_self_contained_page(people_report, tmp_path):
    config = _config(tmp_path / "config.yaml", people_report["study"])
    assert main([str(config), "--out", str(tmp_path / "out"), "--embed"]) == 0
    page = (tmp_path / "out" / "report.html").read_text()
    links = _parse(page)
    assert len(links.images) >= 5
    for source in links.images:
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    local = [t for t in links.targets if not t.startswith(("#", "data:"))]
    assert local == [], local[:5]
    assert "tables/qc.csv" in page  # named as text: the files stay in the folder
    assert yaml.safe_load(json.dumps(json.loads((tmp_path / "out" / "provenance.json").read_text())["config"]))[
        "embed"] is True
    # without --embed the same config links its figures
    plain = _parse((people_report["out"] / "report.html").read_text())
    assert all(s.startswith("figures/") for s in plain.images)


def test_the_demo_config_has_the_qc_section(people_report, tmp_path):
    """analysis/configs/demo.yaml, pointed at the fake people study, makes the QC table and figure."""
    demo = yaml.safe_load(Path("analysis/configs/demo.yaml").read_text())
    study = people_report["study"]
    demo.update(stimuli="tiny", results=str(study["results"]), rsa=None,
                data={"people": str(study["people"]), "simulated": None}, exclusion={"min_trials": 20})
    demo["models"]["evaluate"] = None
    demo["alignment"].update(reference="people", null_draws=20, noise_splits=10)
    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump(demo))
    out, built = run_report(path, tmp_path / "out", progress=False, warn=lambda m: None)
    assert {s.key: s.status for s in built.sections}["qc"] == "ok"
    assert (out / "tables" / "qc.csv").is_file() and (out / "figures" / "qc_gender_people.png").is_file()
    assert 'id="qc"' in (out / "report.html").read_text()


@pytest.mark.browser
def test_the_embedded_page_alone_shows_every_figure_in_chromium(people_report, tmp_path):
    """Only report.html, copied into an empty folder (as a colleague receives it): Chromium
    decodes every figure."""
    import html as html_module
    import re

    from chromium import PROBE, run_chromium

    config = _config(tmp_path / "config.yaml", people_report["study"])
    out, _ = run_report(config, tmp_path / "out", progress=False, warn=lambda m: None, embed=True)
    alone = tmp_path / "colleague"
    alone.mkdir()
    page = alone / "report.html"
    page.write_text((out / "report.html").read_text().replace("</body>", PROBE, 1))
    result = run_chromium(["--window-size=1280,1000", "--virtual-time-budget=10000", "--dump-dom", page.as_uri()],
                          tmp_path / "profile")
    assert result.returncode == 0, result.stderr[-2000:]
    state = json.loads(html_module.unescape(re.search(r'data-probe="([^"]*)"', result.stdout).group(1)))
    images = state["images"]
    assert len(images) >= 5 and all(i["complete"] and i["width"] > 100 for i in images)
    assert state["wide"] == [], state["wide"][:5]
