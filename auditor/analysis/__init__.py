"""Pure pandas analysis of the store's frames: definitions, runs, plug-ins and jobs."""
