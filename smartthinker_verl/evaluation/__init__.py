"""Evaluation of reasoning models: accuracy and response length on math benchmarks.

``smartthinker-verl eval`` (``cli``) samples k responses per problem from benchmark parquet files (``problems``)
with a generation backend (``backends``: vLLM or transformers), appends them to resumable JSONL files
(``generation``, ``records``), grades them with the training scorer (``grading``) and writes the metrics
(``statistics``: pass@k, lengths, truncation rate) to ``res.json``. ``smartthinker-verl report``
(``report``) compares several ``res.json`` files; its table and plot helpers also serve :mod:`smartthinker_verl.demo`.
Nothing heavy is imported here.
"""
