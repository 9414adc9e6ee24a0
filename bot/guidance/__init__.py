"""Guidance: the content files' models and loader, opening hours, and the support finder."""
