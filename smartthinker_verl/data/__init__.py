"""verl's RL row schema and the dataset layer behind ``data_preprocess/``.

- ``rows``        the schema verl's RL dataset reads: :func:`build_row`, :func:`validate_row`, :func:`write_parquet`,
                  :func:`read_parquet`
- ``answers``     :func:`normalize_answer`, :func:`extract_gsm8k_answer`: a source's answers as row strings
- ``sources``     :class:`DatasetSpec` (where a dataset lives, which columns hold what), :func:`load_records`
                  (Hugging Face hub or a local jsonl/json/parquet copy) and :func:`read_jsonl`
- ``gradable``    :func:`ground_truth_problems`: ground truths the grader cannot parse
- ``preprocess``  :func:`convert_records` (records -> rows, with drop counts) and :func:`preprocess_main`, the
                  command line shared by every ``data_preprocess/`` script
- ``reasoning_gym_rows``  reasoning-gym tasks by difficulty level (imported from there: it needs reasoning-gym)
"""

from smartthinker_verl.data.answers import extract_gsm8k_answer, normalize_answer
from smartthinker_verl.data.gradable import ground_truth_problems
from smartthinker_verl.data.preprocess import convert_records, preprocess_main
from smartthinker_verl.data.rows import PROMPT_SUFFIX, build_row, make_prompt, read_parquet, validate_row, write_parquet
from smartthinker_verl.data.sources import DatasetSpec, load_records, read_jsonl

__all__ = [
    "PROMPT_SUFFIX",
    "DatasetSpec",
    "build_row",
    "convert_records",
    "extract_gsm8k_answer",
    "ground_truth_problems",
    "load_records",
    "make_prompt",
    "normalize_answer",
    "preprocess_main",
    "read_jsonl",
    "read_parquet",
    "validate_row",
    "write_parquet",
]
