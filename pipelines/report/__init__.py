"""The deployment-health report: one self-contained HTML file of charts and tables read from the
analytics marts (`modelarts-etl report`, and the nightly `deployment_report` asset)."""
