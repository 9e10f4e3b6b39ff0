"""Feeds: the home feed (hybrid fan-out), live feed pushes, explore, hashtag feeds, trending."""
