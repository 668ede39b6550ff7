"""model package (see DESIGN.md)."""
