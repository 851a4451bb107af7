"""Profile data (LLM settings, chat sessions, quiz results) and documents (resumes, requirements,
processings): one module per concern; import from the module, not from this package."""
