"""``python -m analysis run``: the report end to end on a small fake study, its files, the
findings computed from the numbers, and one clear message per bad input while the rest of the
report is still produced."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from fake_study import (
    TEMPLATE,
    VARIANTS,
    make_evaluate,
    make_relevance,
    make_set,
    simulate_session,
    write_config,
    write_session,
)

from analysis.__main__ import main
from analysis.report import SECTIONS, default_out, register_section, run_report
from analysis.report_base import ReportConfig
from stimuli.contracts.config import load_config
from stimuli.contracts.provenance import read_provenance

pytestmark = pytest.mark.slow


def test_report_folder_holds_the_contract(report):
    out = report["out"]
    statuses = {s.key: s.status for s in report["report"].sections}
    assert statuses == {s.key: "ok" for s in SECTIONS}, statuses
    assert report["messages"] == [] and report["report"].problems == []
    for condition in ("random", "guided", "antiguided"):
        with np.load(out / "maps" / f"ci_group_gender_{condition}.npz") as maps:  # the reference group's CIs
            assert maps["z"].shape == (40, 40) and maps["pixel_sig"].dtype == bool
            assert maps["cluster_sig"].shape == (40, 40) and float(maps["pixel_threshold"]) > 2
            assert maps["participants"].tolist() == ["01", "02", "03", "04"]
    with np.load(out / "maps" / "model-vgg16-imagenet-gender-s0" / "ci_group_gender_random.npz") as maps:
        assert maps["participants"].tolist() == ["m01"]
    with np.load(out / "maps" / "relevance_maps.npz") as maps:
        assert maps["variants"].tolist() == sorted(VARIANTS) and maps["maps"].shape == (8, 40, 40)
        assert str(maps["kind"]) == "positive" and (maps["maps"] >= 0).all()
    tables = {p.stem for p in (out / "tables").glob("*.csv")}
    assert {"ci_summary", "ci_participants", "ci_clusters", "ci_exclusions", "relevance_variants",
            "relevance_reliability", "relevance_seed_icc", "similarity_per_image", "similarity_mean_maps",
            "similarity_level_summary", "similarity_level_anova", "similarity_level_pairwise", "alignment_group",
            "alignment_participants", "alignment_noise_ceiling", "alignment_participant_tests",
            "conditions_descriptives", "conditions_anova", "conditions_pairwise", "findings", "masking_curves",
            "masking_matrix", "masking_by_relation", "masking_level_anova", "masking_level_pairwise",
            "masking_asymmetry_tests"} <= tables
    summary = pd.read_csv(out / "tables" / "ci_summary.csv")
    assert sorted(set(summary.observers)) == ["model-vgg16-imagenet-gender-s0", "template"]
    provenance = read_provenance(out)
    assert provenance["seeds"] == {"report": 3} and provenance["config"]["alignment"]["reference"] == "template"
    inputs = list(provenance["inputs"])
    assert sum(p.endswith("_beh.tsv") for p in inputs) == 5 and sum(p.endswith("_beh.json") for p in inputs) == 5
    assert sum(p.endswith("tiny.npz") for p in inputs) == 8 and any(p.endswith("manifest.csv") for p in inputs)
    assert any(p.endswith("demo_evaluate/tables/transfer_remove.csv") for p in inputs)
    assert provenance["sections"]["alignment"] == "ok" and "report.html" in provenance["outputs"]
    assert not list(out.parent.glob(".out.*")) and not (out / ".scratch").exists()


def test_page_is_self_contained_and_every_figure_exists(report):
    out = report["out"]
    page = (out / "report.html").read_text()
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert len(sources) >= 12
    for source in sources:
        assert not source.startswith(("/", "http")) and (out / source).stat().st_size > 2000
    links = re.findall(r'href="([^"]+)"', page)
    assert all(link.startswith(("#", "tables/", "figures/", "provenance.json")) for link in links)
    assert "<script" not in page and "http://" not in page and "https://" not in page
    for spec in SECTIONS:
        assert f'<section id="{spec.key}" data-status="ok">' in page and spec.title in page
    assert page.index('id="findings"') < page.index('id="overview"')  # the findings come first


def test_findings_are_computed_from_the_numbers(report):
    findings = pd.read_csv(report["out"] / "tables" / "findings.csv").set_index("topic")
    # the fake relevance maps were built with seeds alike, tasks less, pretraining least
    assert findings.loc["Stability across seeds", "verdict"] == "agrees"
    assert findings.loc["Dependence on pretraining data", "verdict"] == "agrees"
    # the fake masking tables: own > seed > task > pretrain, imagenet maps serve faces models better
    assert findings.loc["Masking transfer", "verdict"] == "agrees"
    assert findings.loc["Asymmetries of transfer", "verdict"] == "agrees"
    assert "across pretraining: imagenet maps serve faces models better than the reverse" in findings.loc[
        "Asymmetries of transfer", "measured"]
    by_relation = pd.read_csv(report["out"] / "tables" / "masking_by_relation.csv").set_index("relation")
    assert by_relation.loc["same", "relative_mean"] == pytest.approx(1.0)
    assert by_relation.loc["seed", "relative_mean"] > by_relation.loc["task", "relative_mean"] > by_relation.loc[
        "pretrain", "relative_mean"]
    levels = pd.read_csv(report["out"] / "tables" / "similarity_level_summary.csv").set_index("relation")
    assert f"r = {levels.loc['seed', 'mean_r']:.2g}" in findings.loc["Stability across seeds", "measured"]
    # guided bubbles (near the diagnostic eyes) needed less revealed area than random ones
    guided = [t for t in findings.index if t.startswith("Model-relevant pixels and observers (gender, template")]
    assert len(guided) == 1
    descriptives = pd.read_csv(report["out"] / "tables" / "conditions_descriptives.csv")
    template = descriptives[(descriptives.observers == "template") & (descriptives.dv == "threshold_revealed_px")]
    means = template.set_index("condition")["mean"]
    assert means["guided"] < means["random"] < means["antiguided"]
    measured = findings.loc[guided[0], "measured"]
    assert (f"revealed area at the target accuracy {means['guided']:.4g} px guided vs {means['random']:.4g} px "
            "random") in measured
    assert "after the first 20 trials of each staircase" in measured
    # the verdict follows the paired tests on accuracy and revealed area (4 observers: the area test may miss)
    pairwise = pd.read_csv(report["out"] / "tables" / "conditions_pairwise.csv")
    rows = pairwise[(pairwise.observers == "template") & (pairwise.A == "guided") & (pairwise.B == "random")]
    better = {"accuracy_after_burn_in": True, "threshold_revealed_px": False}
    helped = [dv for dv, higher in better.items()
              if (row := rows[rows.dv == dv].iloc[0]).p_corr < 0.05 and (row.mean_A > row.mean_B) == higher]
    verdict = findings.loc[guided[0], "verdict"]
    assert verdict.startswith("helped") if helped else verdict == "no detectable difference"


def test_pingouin_outputs_are_in_tidy_tables(report):
    tables = report["out"] / "tables"
    pairwise = pd.read_csv(tables / "conditions_pairwise.csv")
    assert {"A", "B", "T", "dof", "p_unc", "p_corr", "cohen", "dv", "observers"} <= set(pairwise.columns)
    assert set(pairwise.dv) == {"accuracy_after_burn_in", "mean_revealed_px", "threshold_revealed_px"}
    assert set(pairwise.observers) == {"template"}
    anova = pd.read_csv(tables / "similarity_level_anova.csv")
    assert {"Source", "F", "p_unc", "ng2"} <= set(anova.columns)
    tests = pd.read_csv(tables / "alignment_participant_tests.csv")
    assert {"reference", "n", "mean_r", "T", "p_val", "cohen_d", "p_fdr"} <= set(tests.columns)
    assert (tests.n == 4).all() and (tests.p_fdr >= tests.p_val - 1e-12).all()
    group = pd.read_csv(tables / "alignment_group.csv")
    assert sorted(group.reference) == sorted(VARIANTS + ["observer:vgg16-imagenet-gender-s0"])
    assert group.p_shift.between(0, 1).all() and (group.null_q95 > group.null_mean).all()
    ceiling = pd.read_csv(tables / "alignment_noise_ceiling.csv").iloc[0]
    assert ceiling.n_participants == 4 and 0 < ceiling.reliability <= ceiling.ceiling <= 1
    participants = pd.read_csv(tables / "alignment_participants.csv")
    assert len(participants) == 4 * 9 and set(participants.human) == {"sub-01", "sub-02", "sub-03", "sub-04"}


def test_bad_inputs_give_one_message_each_and_the_rest_is_built(study, tmp_path):
    root = tmp_path
    results, simulated = root / "results", root / "simulated"
    make_set(results)
    make_relevance(results, nan_in=VARIANTS[2])
    make_evaluate(results / "evaluate" / "demo_evaluate")
    for i in range(3):
        write_session(simulated, f"{i + 1:02d}", 1, simulate_session(200 + i, trials=80), TEMPLATE)
    rows = simulate_session(300, trials=80)
    write_session(simulated, "04", 1, rows, TEMPLATE, columns=[c for c in rows[0] if c != "sigma_px"])
    broken = write_session(simulated, "05", 1, simulate_session(301, trials=80), TEMPLATE)
    lines = broken.read_text().splitlines()
    lines[4] = lines[4].replace("[[", "[[oops", 1)
    broken.write_text("\n".join(lines) + "\n")
    write_session(simulated, "06", 1, simulate_session(302, trials=80, conditions=("random",)), TEMPLATE)
    write_session(simulated, "07", 1, simulate_session(303, trials=20), TEMPLATE)  # too few trials
    study_paths = {"root": root, "results": results, "simulated": simulated}
    config = write_config(root / "config.yaml", study_paths,
                          ci={"conditions": ["random", "guided", "antiguided", "extra"]})
    messages = []
    out, built = run_report(config, root / "out", progress=False, warn=messages.append)
    text = "\n".join(messages)
    assert all("\n" not in m for m in messages)
    expected = [
        "sub-04_ses-1_task-gender_beh.tsv: missing column(s) sigma_px",
        "sub-05_ses-1_task-gender_beh.tsv, line 5: cannot parse bubble centres",
        "sub-06 condition guided: no main trials in this condition; excluded",
        "sub-06 condition antiguided: no main trials in this condition; excluded",
        "condition extra: no trials in any usable file",
        "sub-07 condition random: 20 trials, fewer than the minimum 50; excluded",
        "sub-07 condition guided: 20 trials, fewer than the minimum 50; excluded",
        f"{VARIANTS[2]}/tiny.npz: 1 of 8 maps hold NaN or infinite values",
    ]
    for piece in expected:
        assert sum(piece in m for m in messages) == 1, (piece, text)
    statuses = {s.key: s.status for s in built.sections}
    assert statuses == {s.key: "ok" for s in SECTIONS}, statuses
    with np.load(out / "maps" / "ci_group_gender_random.npz") as maps:
        assert maps["participants"].tolist() == ["01", "02", "03", "06"]
    with np.load(out / "maps" / "ci_group_gender_guided.npz") as maps:
        assert maps["participants"].tolist() == ["01", "02", "03"]
    exclusions = pd.read_csv(out / "tables" / "ci_exclusions.csv", dtype={"participant": str})
    assert {"04", "05", "06", "07"} <= set(exclusions.participant)
    variants = pd.read_csv(out / "tables" / "relevance_variants.csv").set_index("variant")
    assert variants.loc[VARIANTS[2], "n_maps"] == 7 and variants.loc[VARIANTS[0], "n_maps"] == 8
    page = (out / "report.html").read_text()
    problems = page[page.index('<section id="problems"'):]
    assert problems.count("<li>") == len(messages) and problems.count("missing column(s) sigma_px") == 1
    assert read_provenance(out)["problems"] == built.problems == messages
    conditions = pd.read_csv(out / "tables" / "conditions_descriptives.csv")
    assert conditions.set_index(["dv", "condition"]).loc[("accuracy_after_burn_in", "random"), "n"] == 4


def test_a_bad_evaluate_table_is_one_message(report, tmp_path):
    evaluate = make_evaluate(tmp_path / "evaluate" / "broken")
    table = pd.read_csv(evaluate / "tables" / "transfer_remove.csv").drop(columns="relative")
    table.to_csv(evaluate / "tables" / "transfer_remove.csv", index=False)
    config = write_config(tmp_path / "c.yaml", report["study"], sections=["masking", "findings", "problems"],
                          models={"evaluate": str(evaluate)})
    messages = []
    out, built = run_report(config, tmp_path / "out", progress=False, warn=messages.append)
    assert [(s.key, s.status) for s in built.sections] == [("findings", "ok"), ("masking", "error"),
                                                           ("problems", "ok")]
    assert messages == [f"section 'Relevance-based masking': {evaluate}/tables/transfer_remove.csv: missing "
                        "column(s) relative"]
    findings = pd.read_csv(out / "tables" / "findings.csv").set_index("topic")
    assert findings.loc["Masking transfer", "verdict"] == "not measured"


def test_absent_inputs_are_said_in_the_page(tmp_path, capsys):
    results = tmp_path / "results"
    make_set(results)
    config = write_config(tmp_path / "config.yaml", {"root": tmp_path, "results": results,
                                                       "simulated": tmp_path / "nothing"})
    out, built = run_report(config, tmp_path / "out", progress=False, warn=lambda m: None)
    statuses = {s.key: s.status for s in built.sections}
    assert statuses == {"findings": "ok", "overview": "ok", "qc": "absent", "ci": "absent", "relevance": "absent",
                        "similarity": "absent", "masking": "absent", "alignment": "absent", "conditions": "absent",
                        "problems": "ok"}
    page = (out / "report.html").read_text()
    assert "no trial files of task &#x27;gender&#x27;" in page and "python -m experiments run" in page
    assert "make them with: python -m model explain --variant VARIANT --stimuli tiny" in page
    assert "demo_evaluate does not exist; make it with: python -m model evaluate CONFIG.yaml --out" in page
    findings = pd.read_csv(out / "tables" / "findings.csv")
    assert set(findings.verdict) == {"not measured"}
    # a missing prepared set: the sections that need it show the command that makes it
    config = write_config(tmp_path / "other.yaml", {"root": tmp_path, "results": tmp_path / "empty",
                                                      "simulated": tmp_path / "nothing"}, stimuli="nosuchset")
    (tmp_path / "nothing").mkdir()
    write_session(tmp_path / "nothing", "01", 1, simulate_session(1, trials=60), TEMPLATE)
    out, built = run_report(config, tmp_path / "out2", progress=False, warn=lambda m: None)
    ci = next(s for s in built.sections if s.key == "ci")
    assert ci.status == "error" and "python -m stimuli prepare" in "".join(ci.blocks)


def test_command_line_exit_codes_and_config_errors(report, tmp_path, capsys):
    config = write_config(tmp_path / "config.yaml", report["study"], sections=["overview", "problems"])
    out = tmp_path / "out"
    assert main(["run", str(config), "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out and (out / "report.html").is_file()
    page = (out / "report.html").read_text()
    assert 'id="overview"' in page and 'id="ci"' not in page
    with pytest.raises(SystemExit) as exit:
        main(["run", str(config), "--out", str(out)])
    assert exit.value.code == 2 and "--overwrite" in capsys.readouterr().err
    assert main(["run", str(config), "--out", str(out), "--force"]) == 0
    capsys.readouterr()
    bad = [({"models": {"relevance_maps": "mean"}}, "unknown key 'models.relevance_maps' (did you mean "
                                                    "'models.relevance_map'?)"),
           ({"alpha": 1.5}, "key 'alpha' must lie between 0 and 1"),
           ({"exclusion": {"min_trials": "many"}}, "key 'exclusion.min_trials' should be int"),
           ({"sections": ["overview", "rsa2"]}, "unknown report section 'rsa2'")]
    for overrides, message in bad:
        path = write_config(tmp_path / "bad.yaml", report["study"], **overrides)
        with pytest.raises(SystemExit) as exit:
            main(["run", str(path), "--out", str(tmp_path / "bad")])
        err = capsys.readouterr().err
        assert exit.value.code == 2 and message in err and err.count("\n") == 1, err
        assert not (tmp_path / "bad").exists()
    # default output folder: <results>/analysis/<config file stem>
    loaded = load_config(ReportConfig, config)
    assert default_out(loaded, config) == report["study"]["results"] / "analysis" / "config"


def test_a_registered_section_is_built_and_its_errors_are_contained(report, tmp_path):
    from stimuli.contracts.errors import InputError

    def build_extra(ctx, section):
        section.text(f"{len(ctx.groups('gender'))} observer groups")

    def build_broken(ctx, section):
        raise InputError("similarity.csv, line 3: rating 'x' is not a number")

    try:
        register_section("extra", "An added section", build_extra)
        register_section("broken", "A broken section", build_broken)
        config = write_config(tmp_path / "c.yaml", report["study"], sections=["overview", "extra", "broken",
                                                                               "problems"])
        messages = []
        out, built = run_report(config, tmp_path / "out", progress=False, warn=messages.append)
    finally:
        SECTIONS[:] = [s for s in SECTIONS if s.key not in ("extra", "broken")]
    assert [s.key for s in built.sections] == ["overview", "extra", "broken", "problems"]
    assert [s.status for s in built.sections] == ["ok", "ok", "error", "ok"]
    page = (out / "report.html").read_text()
    assert "2 observer groups" in page and "rating &#x27;x&#x27; is not a number" in page
    assert messages == ["section 'A broken section': similarity.csv, line 3: rating 'x' is not a number"]
    assert json.loads((out / "provenance.json").read_text())["sections"]["broken"] == "error"

