"""The dashboard's widgets; each gets its data from the app and reports with Messages."""
