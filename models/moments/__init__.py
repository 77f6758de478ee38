"""Moments to reach out: refills due, birthdays, occasions learned from purchase dates, tier upgrades.

:mod:`models.moments.config` holds the settings (section ``moments`` of configs/segments.yaml) and
:mod:`models.moments.detect` finds the moments; training precomputes them into the CLV model's serving folder, and
the API (``GET /v1/moments``) and ``clientele moments`` read that one table.
"""
