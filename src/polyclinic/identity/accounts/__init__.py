"""Clinic accounts: users, registration, email confirmation, password reset and change,
password hashing, and a patient claiming the record the clinic made for them."""
