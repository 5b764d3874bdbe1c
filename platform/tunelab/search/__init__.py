"""How the next configuration is chosen (searchers) and when a trial is cut short (schedulers)."""
