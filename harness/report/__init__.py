"""Run output under reports/<run-id>/: what a person reads the morning after."""
