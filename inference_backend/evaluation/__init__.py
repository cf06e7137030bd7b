"""Scoring methods on cases with a known truth: suites, metrics, panels, the demo."""
