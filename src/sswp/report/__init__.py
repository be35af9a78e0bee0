"""The report wing: everything that reads the runs' results and says what they show."""
