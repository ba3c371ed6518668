# The Airflow image of docker-compose.yml: the official image plus Relance's direct dependencies
# (requirements.txt), bound by constraints.txt like every other install (README: Dependencies).
# No test tool goes in: the SES emulator is a service of its own (docker-compose.yml).
FROM apache/airflow:3.3.2-python3.11
COPY requirements.txt constraints.txt /
RUN pip install --no-cache-dir "apache-airflow==3.3.2" -r /requirements.txt -c /constraints.txt
