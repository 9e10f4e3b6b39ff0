"""Posts: create, publish, edit with history, delete, collaborate, and read them."""
