"""Scripts that compute an experiment's figures from a workdir (run as `python -m experiments.tools.NAME`)."""
