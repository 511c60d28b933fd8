"""The benchmark's sections, one module each, in the order bench/run.py runs them."""
