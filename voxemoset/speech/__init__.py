"""Speech: reference clip preparation, reference assignment, synthesis."""
