"""verl's RL row schema and the dataset layer behind ``data_preprocess/``.

- ``rows``        the schema verl's RL dataset reads: :func:`build_row`, :func:`validate_row`, :func:`validate_rows`,
                  :func:`write_parquet`, :func:`read_parquet`, :func:`validate_parquet_file`
- ``answers``     :func:`normalize_answer`, :func:`extract_gsm8k_answer`: a source's answers as row strings
- ``sources``     :class:`DatasetSpec` (where a dataset lives, which columns hold what), :func:`load_records`
                  (Hugging Face hub or a local jsonl/json/parquet copy) and :func:`read_jsonl`
- ``gradable``    :func:`ground_truth_problems`, :func:`unparseable`: ground truths the grader cannot parse
- ``preprocess``  :func:`convert_records` (records -> rows, with drop counts) and :func:`preprocess_main`, the
                  command line shared by every ``data_preprocess/`` script
- ``reasoning_gym_rows``  :func:`~smartthinker_verl.data.reasoning_gym_rows.task_splits`: reasoning-gym tasks by
                  difficulty level, training and validation disjoint (imported from there: it needs reasoning-gym)

Everything public is importable from ``smartthinker_verl.data`` itself.
"""

from smartthinker_verl.data.answers import extract_gsm8k_answer, is_missing, normalize_answer
from smartthinker_verl.data.gradable import ground_truth_problems, unparseable
from smartthinker_verl.data.preprocess import (
    DROP_NO_ANSWER,
    DROP_NO_PROBLEM,
    DROP_UNGRADABLE_ANSWER,
    DROP_UNUSABLE_ANSWER,
    ConversionResult,
    build_parser,
    convert_records,
    preprocess,
    preprocess_main,
)
from smartthinker_verl.data.rows import (
    PROMPT_SUFFIX,
    REQUIRED_COLUMNS,
    build_row,
    make_prompt,
    read_parquet,
    validate_parquet_file,
    validate_row,
    validate_rows,
    write_parquet,
)
from smartthinker_verl.data.sources import LOCAL_SUFFIXES, DatasetSpec, load_records, read_jsonl

__all__ = [
    "DROP_NO_ANSWER",
    "DROP_NO_PROBLEM",
    "DROP_UNGRADABLE_ANSWER",
    "DROP_UNUSABLE_ANSWER",
    "LOCAL_SUFFIXES",
    "PROMPT_SUFFIX",
    "REQUIRED_COLUMNS",
    "ConversionResult",
    "DatasetSpec",
    "build_parser",
    "build_row",
    "convert_records",
    "extract_gsm8k_answer",
    "ground_truth_problems",
    "is_missing",
    "load_records",
    "make_prompt",
    "normalize_answer",
    "preprocess",
    "preprocess_main",
    "read_jsonl",
    "read_parquet",
    "unparseable",
    "validate_parquet_file",
    "validate_row",
    "validate_rows",
    "write_parquet",
]
