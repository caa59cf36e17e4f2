"""journal_relay: clients' between-session journal emails, screened, stored and digested for their therapist."""

__version__ = "0.1.0"
