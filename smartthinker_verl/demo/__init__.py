"""The CPU demo and comparison: offline assets, demo data and reports; never imported by a training process.

- ``assets``          offline model and data assets (SmolLM2-135M-Instruct, a tiny Qwen2, GSM8K items)
- ``data``            the demo's arithmetic prompts as verl rows
- ``report``          ``make demo``'s before/after table and plot from ``metrics.jsonl``
- ``compare_report``  ``make compare``'s table of methods
"""
