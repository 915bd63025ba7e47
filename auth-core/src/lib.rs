//! Authentication core (accounts, tokens); filled in by the auth issue.
