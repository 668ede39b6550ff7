"""The ground floor every package shares: errors, the config loader, provenance and file formats.

``model``, ``experiments`` and ``analysis`` read and write each other's files only through these
modules: :mod:`.errors` (one ``InputError``, one line, exit 2), :mod:`.config` (the validating
YAML loader), :mod:`.provenance` (``record_run``, atomic writes, replace-only-our-own folders),
:mod:`.prepared` (prepared stimulus sets), :mod:`.trials` (trial files), :mod:`.relevance`
(relevance maps, one writer), :mod:`.rdm` (RDM files), :mod:`.variants` (variant names),
:mod:`.maps` (comparing maps) and :mod:`.cli` (the shared command-line options).
"""
