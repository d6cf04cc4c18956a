"""`digest` and `schedule`: the weekly digest (issue 6)."""
