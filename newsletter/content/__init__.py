"""What is sent and to whom: articles and issues, the subscriber list and its sources."""
