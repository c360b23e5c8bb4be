-- Server A of the seed (postgres_1, host port 5000): holds tenant 1's table.
CREATE DATABASE tenant1;
\connect tenant1
CREATE TABLE test_app_users (first_name text NOT NULL, last_name text NOT NULL);
INSERT INTO test_app_users VALUES ('Ada', 'Lovelace'), ('Alan', 'Turing'), ('Grace', 'Hopper');
