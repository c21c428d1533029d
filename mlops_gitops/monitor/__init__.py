"""Monitoring of what an environment serves: drift of the served traffic against the training data
of the served version, and live quality from ground-truth labels that arrive later.

One job per module: :mod:`served` (what is deployed), :mod:`logread` (the inference log),
:mod:`reference` (the training data by its DVC md5), :mod:`stats` (drift per column),
:mod:`check` (the verdict), :mod:`feedback` (labels joined with the log), :mod:`render` (text,
JSON, Markdown, Prometheus) and :mod:`plots` (PNG histograms). Nothing here prints.
"""
