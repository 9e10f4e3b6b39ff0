"""The protocol harness: drives real gateway clients against a running server and reports.

    python -m loadtest connect --clients 10000
    python -m loadtest fanout --clients 1000
    python -m loadtest ceiling --clients 1000

See loadtest/RESULTS.md for measured numbers and how they were taken.
"""
