"""verl CPU platform and `hf` rollout backend (registered here; inert unless ``VERL_PLATFORM=cpu``)."""
