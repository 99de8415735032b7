"""Importable stage code of the piper-voice-workflow (pure functions + thin entry points)."""
