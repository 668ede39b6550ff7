"""analysis package (see DESIGN.md)."""
