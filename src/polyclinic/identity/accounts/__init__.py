"""Clinic accounts: users, registration, email confirmation, password reset and change,
password hashing, and patients as the clinic's staff see them."""
