"""The Streamlit RCA console: `streamlit run dashboard/app.py` (see README, "Dashboard")."""
