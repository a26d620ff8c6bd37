"""Shared data of the framework-integration tests (tests/unit/integrations)."""

KEY = "integration-key"
QUERY = "how do I make the database faster"
TEXTS = {
    "upload://db.md": "Database tuning. Add an index so the database avoids full table scans; it is faster.",
    "upload://sort.md": "Sorting lists in Python: use sorted(x) or list.sort() for a faster sort.",
    "upload://fruit.md": "Bananas are yellow and apples are red; fruit is healthy.",
    "upload://cache.md": "A cache in front of the database makes repeated reads faster.",
}
PASSAGES = [
    "Gravity bends light around massive objects.",
    "Add an index so the database avoids full table scans.",
    "Bananas are yellow.",
    "A cache in front of the database makes repeated reads faster.",
    "The database is slow when every query scans the whole table.",
]
