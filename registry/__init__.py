"""The fleet registry: districts, schools and cameras, and their import and export."""
