"""Posts: rows, versions, entities, collaborators and commerce links."""
