"""AMC 2023 (math-ai/amc23, split test: 40 problems) -> verl RL parquet (an evaluation set).

    python data_preprocess/amc23.py  # hub -> data/amc23/test.parquet
    python data_preprocess/amc23.py --local_dataset_path FILE --output_dir DIR

Source columns: id, question, answer (a float such as 27.0, written as the ground truth "27"), url.
"""

import sys

from smartthinker_verl.data import DatasetSpec, preprocess_main

SPEC = DatasetSpec(
    name="amc23",
    hub_id="math-ai/amc23",
    split="test",
    output_split="test",
    problem_key="question",
    answer_key="answer",
    metadata_keys=("id", "url"),
    description='AMC 2023 (40 problems, evaluation; float answers such as 27.0 become "27") -> verl RL parquet.',
)

if __name__ == "__main__":
    sys.exit(preprocess_main(SPEC))
