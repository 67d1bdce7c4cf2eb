"""The Streamlit app (`make run`). Only this package imports streamlit; the library never does."""
