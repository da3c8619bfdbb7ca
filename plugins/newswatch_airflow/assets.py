"""The Assets between the stages: ingest -> articles -> classify -> claims -> alerts.

An event on an Asset means "there is new work in that index"; the consumer finds the work by
query, so a lost or merged event only delays work until the next event or catch-up run.
"""

from airflow.sdk import Asset

ARTICLES = Asset("newswatch://articles")
CLAIMS = Asset("newswatch://claims")
