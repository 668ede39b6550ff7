"""experiments package (see DESIGN.md)."""
