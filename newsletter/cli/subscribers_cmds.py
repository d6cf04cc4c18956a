"""`subscribers ...` and `serve`: the list and the public unsubscribe endpoint (issue 5)."""
