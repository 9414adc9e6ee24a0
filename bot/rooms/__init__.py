"""The online ibasho: scheduled peer-support rooms, from joining and relaying on LINE to the sessions' schedule."""
