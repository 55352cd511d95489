"""The demo organisation (`fieldcrm demo`): a believable few weeks of a real French team,
written through the one writer (loader.py), from real places (places.py) and the words a
rep writes (texts.py)."""
