"""The conversation on LINE: the event router, the table of routes, the guidance menu, and the people who write."""
