"""The ground floor every package shares: errors, the config loader, provenance and file formats.

``model``, ``experiments`` and ``analysis`` import these modules (and they import nothing
above them but :mod:`stimuli.faces`' image reader), so the files that pass between the parts
are named, written and read in one place each:

- :mod:`.errors`: one ``InputError`` (one line, exit 2) and the ``cli_errors`` decorator;
- :mod:`.config`: the validating YAML loader ("did you mean" hints);
- :mod:`.provenance`: ``record_run`` (the one writer of ``provenance.json``) and atomic
  file writes;
- :mod:`.outputs`: output folders made all or nothing, replacing only their own command's
  earlier output (moved aside, never deleted);
- :mod:`.prepared`: prepared stimulus sets (the one writer and reader) and :mod:`.set_hash`,
  their content hash;
- :mod:`.trials`: trial files (paths, columns, the reader and its checks; sessions write the rows);
- :mod:`.relevance` and :mod:`.relevance_file`: relevance maps (one writer,
  ``relevance_writer``, and one reader) and their byte layout;
- :mod:`.rdm`: RDM files; :mod:`.variants`: variant names; :mod:`.maps`: checking and scoring
  maps on the stimulus grid; :mod:`.names`: the rules of names that key files (labels,
  conditions) and the one cleaner of free text for a file name;
- :mod:`.cli`: the command pattern (``dispatch``) and the shared options
  (``--results``, ``--out``, ``--device``, ``--force``).
"""
