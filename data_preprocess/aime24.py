"""AIME 2024 (HuggingFaceH4/aime_2024, split train: 30 problems) -> verl RL parquet (an evaluation set).

    python data_preprocess/aime24.py  # hub -> data/aime24/test.parquet
    python data_preprocess/aime24.py --local_dataset_path FILE --output_dir DIR

Source columns: id, problem, solution, answer (str), url, year. The hub calls its only split train; the rows are
written as an evaluation split (extra_info.split = test).
"""

import sys

from smartthinker_verl.data import DatasetSpec, preprocess_main

SPEC = DatasetSpec(
    name="aime24",
    hub_id="HuggingFaceH4/aime_2024",
    split="train",
    output_split="test",
    problem_key="problem",
    answer_key="answer",
    solution_key="solution",
    metadata_keys=("id", "url", "year"),
    description="AIME 2024 (30 problems, evaluation) -> verl RL parquet.",
)

if __name__ == "__main__":
    sys.exit(preprocess_main(SPEC))
