#!/usr/bin/env bash
# One-shot set-up of the Airflow metadata database (the `airflow-init` service of docker-compose.yml):
# migrate the schema, write the UI login, and (re)create the two connections newswatch reads at task
# run time. Safe to run again: every step replaces what an earlier run wrote.
set -euo pipefail

airflow db migrate

# The simple auth manager reads passwords from this JSON file (shared by every Airflow service).
python - <<'PY'
import json, os
path = os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
user = os.environ.get("AIRFLOW_ADMIN_USER", "admin")
with open(path, "w") as fh:
    json.dump({user: os.environ.get("AIRFLOW_ADMIN_PASSWORD", "admin")}, fh)
PY

replace_connection() {
    airflow connections delete "$1" >/dev/null 2>&1 || true
    airflow connections add "$1" --conn-json "$2"
}

replace_connection elasticsearch_default "$(cat <<JSON
{"conn_type": "elasticsearch", "host": "elasticsearch", "port": 9200, "schema": "http"}
JSON
)"
replace_connection smtp_default "$(cat <<JSON
{"conn_type": "smtp", "host": "mailpit", "port": 1025,
 "extra": {"disable_ssl": true, "disable_tls": true, "from_email": "newswatch <newswatch@localhost>"}}
JSON
)"
echo "airflow-init: database migrated, login and connections written"
