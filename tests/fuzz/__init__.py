"""Fuzz targets: each module is a hypothesis test module and an atheris entry point.

``make test`` runs a short deterministic slice of every target (the "ci" profile);
``make fuzz`` runs long randomised hypothesis campaigns and coverage-guided atheris
campaigns (``python -m tests.fuzz``). See docs/security.md, "Fuzzing".
"""
