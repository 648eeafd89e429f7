"""Evaluation of reasoning models: accuracy and response length on math benchmarks.

``smartthinker-verl eval`` (``cli``) samples k responses per problem of benchmark parquet files (``problems``) with
vLLM or transformers (``backends``) into resumable JSONL files (``generation``, ``records``), grades them with the
training scorer (``grading``) and writes pass@k, lengths and truncation (``statistics``) to ``res.json``;
``smartthinker-verl report`` (``report``) compares ``res.json`` files. Nothing heavy is imported here.
"""
