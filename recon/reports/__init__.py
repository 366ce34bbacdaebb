"""Output writers: CSV files, summary.json, report.html."""
