"""`preview`: the local preview server with live reload (issue 3)."""
