"""Serve mode: a small local web app over the same Snakemake DAG (``python -m
workflow_scripts.serve``). Modules: ``app`` (routes), ``runner`` (the Snakemake process),
``progress`` (reading Snakemake's output), ``uploads`` (streaming, names, checks),
``overrides`` (the review page's decisions), ``auth`` (token, Host, CSRF), ``workspace``
(paths from the config)."""
