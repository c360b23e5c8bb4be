-- Server B of the seed (postgres_2, host port 5432): tenant 1's database without the table.
CREATE DATABASE tenant1;
