"""Benchmarks for dreamvideo: run the whole suite with ``python -m bench`` (or ``python bench/run_all.py``)."""
