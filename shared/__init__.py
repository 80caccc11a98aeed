"""Runkeeper → Strava sync: all the app's logic (function_app.py only declares bindings)."""
