"""The dashboard's screens: task detail, the forms, confirmation, help, shutdown."""
