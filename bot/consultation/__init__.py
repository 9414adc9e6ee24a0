"""Consultations: the person's requests, the queue, risk screening in the service, referrals, flag reviews and staff accounts.

These are the domain functions that the LINE handlers, the console, the CLI and the simulator all use.
"""
