"""verl platforms our recipes add, where stock verl 0.9.1 has none (``cpu``); loaded only when selected."""
