"""A blog's RSS or Atom feed pulled into the issues folder: fetch, parse, convert, write once.

Below the digest (the scheduler pulls before each run) and above content: what it writes are
ordinary article files, read back by content/ like any other.
"""
