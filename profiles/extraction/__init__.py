"""Text out of uploaded files: the parsers (`parsers`) and the bounded process they run in (`sandbox`).

Neither module imports Django; `profiles.uploads` reads the settings and calls `sandbox.extract`.
"""
