"""Reporting: the response-rate figures, the HTML report, and the simulator that fills a period with synthetic data."""
