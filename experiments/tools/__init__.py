"""Scripts that compute figures from workdirs or configs: `python -m experiments.tools.NAME`."""
