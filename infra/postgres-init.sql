-- The service connects as an ordinary role: CREATEROLE (one role per clinic), no superuser.
CREATE ROLE polyclinic LOGIN PASSWORD 'polyclinic' CREATEROLE;
CREATE DATABASE polyclinic OWNER polyclinic;
