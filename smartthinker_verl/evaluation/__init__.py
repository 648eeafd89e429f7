"""Evaluation of reasoning models: accuracy and response length on math benchmarks.

``smartthinker-verl eval`` samples k responses per problem from benchmark parquet files (vLLM or transformers),
saves them as JSONL (resumable), grades them with the training scorer and writes metrics (pass@k, lengths,
truncation rate) to ``res.json``; ``smartthinker-verl report`` compares several ``res.json`` files.

Modules, one job each:

- ``problems``   benchmark parquet files -> :class:`~smartthinker_verl.evaluation.problems.Problem` lists
- ``records``    the generations JSONL: writing, reading, resuming an interrupted run
- ``backends``   generation backends (``hf``: transformers; ``vllm``: GPUs or vLLM's CPU build) behind one interface
- ``generation`` sampling settings and the resumable generation loop
- ``grading``    grading records with :mod:`smartthinker_verl.scoring`
- ``statistics`` pass@k (unbiased), lengths, truncation rate, standard errors, compression
- ``summary``    ``res.json``: metrics per benchmark and overall
- ``cli``        the ``eval`` subcommand
- ``report``     the ``report`` subcommand (Markdown tables, plot, AES) and the table and plot helpers of
                 :mod:`smartthinker_verl.demo`'s reports

Nothing heavy is imported here.
"""
