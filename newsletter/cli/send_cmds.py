"""`send` and `status`: campaigns to the whole list (issue 4)."""
