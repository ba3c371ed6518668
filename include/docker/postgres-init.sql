-- Creates the Relance warehouse database beside Airflow's metadata database (docker compose).
CREATE USER relance WITH PASSWORD 'relance';
CREATE DATABASE warehouse OWNER relance;
