"""The report of ``python -m analysis run CONFIG.yaml``: one HTML page with its tables, maps and figures.

Modules, from the ground up:

* :mod:`~analysis.report.config`: the YAML config (``ReportConfig`` and its parts);
* :mod:`~analysis.report.context`: what the report reads and holds (observer groups, the
  ``ReportContext`` that loads each input once);
* :mod:`~analysis.report.page`: a section's HTML, numbers in prose, the page, ``--embed``;
* :mod:`~analysis.report.registry`: the sections, registered by decorator in one dict;
* :mod:`~analysis.report.plots` (the one small-multiples / colour bar / PNG helper every figure
  uses, and the map figures) and :mod:`~analysis.report.charts` (curves and bars);
* the sections by subject: :mod:`~analysis.report.sections_people` (data, CIs, alignment,
  conditions, problems), :mod:`~analysis.report.sections_quality` (timing and QC),
  :mod:`~analysis.report.sections_models` (relevance maps, their similarity),
  :mod:`~analysis.report.sections_masking`, :mod:`~analysis.report.sections_similarity`
  (similarity judgements, RSA) and :mod:`~analysis.report.findings` (next to the seed study);
* :mod:`~analysis.report.run`: the command (``main(argv)``) and ``run_report``.

This package imports none of them itself: :mod:`analysis.ci_command` draws its figures with
:mod:`~analysis.report.plots` without loading the report.
"""
