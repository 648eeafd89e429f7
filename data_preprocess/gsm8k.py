"""GSM8K (openai/gsm8k, config main) -> verl RL parquet: split test (1,319 rows) or --split train (7,473).

    python data_preprocess/gsm8k.py  # hub -> data/gsm8k/test.parquet
    python data_preprocess/gsm8k.py --local_dataset_path FILE --output_dir DIR

Source columns: question, answer (a worked solution ending in "#### N"). The ground truth is N without thousands
separators; the whole worked solution is kept as extra_info.solution.
"""

import sys

from smartthinker_verl.data import DatasetSpec, extract_gsm8k_answer, preprocess_main

SPEC = DatasetSpec(
    name="gsm8k",
    hub_id="openai/gsm8k",
    hub_config="main",
    split="test",
    output_split="test",
    problem_key="question",
    answer_key="answer",
    solution_key="answer",
    extract_answer=extract_gsm8k_answer,
    description="GSM8K (config main) -> verl RL parquet; the ground truth is the number after ####.",
)

if __name__ == "__main__":
    sys.exit(preprocess_main(SPEC))
