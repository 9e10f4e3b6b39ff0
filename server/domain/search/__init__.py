"""Discovery: search (behind an engine protocol), lists and their feeds, muted words (keyword
filters), search history and suggested users."""
