"""Storage: the table models, engines and sessions, and live announcements made on commit."""
