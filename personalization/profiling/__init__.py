"""The visitor profile: who is browsing, how they arrived, where from and what they like."""
