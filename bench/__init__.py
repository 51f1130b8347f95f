"""overfit's benchmark suite: speed, the hardware limit, time to accuracy, dense evaluation, scaling.

Run it from the repository root with `python -m bench` (or `make bench`); `--quick`
is a smoke test of under a minute. Each result is printed as one JSON line with the
device name, appended to `bench/results.jsonl`, and the whole run is summarised in
`bench/RESULTS.md`. These are measurements, not tests: nothing here asserts a time.
"""
