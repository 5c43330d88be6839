"""Investigation: the day-to-day questions an admin asks of the store (README.md, "Commands").

Every function here reads the store only (offline) and returns plain data; the CLI turns it
into rich tables or JSON.
"""
