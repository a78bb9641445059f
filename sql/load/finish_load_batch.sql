-- Close the audit row of one load with its counts.
update load_batches set
    status = %(status)s,
    services = %(services)s,
    services_missing = %(services_missing)s,
    pages = %(pages)s,
    requests = %(requests)s,
    retries = %(retries)s,
    throttled = %(throttled)s,
    fetched = %(fetched)s,
    out_of_window = %(out_of_window)s,
    inserted = %(inserted)s,
    already_present = %(already_present)s,
    quarantined = %(quarantined)s,
    records_new = %(records_new)s,
    records_changed = %(records_changed)s,
    records_unchanged = %(records_unchanged)s,
    records_regressed = %(records_regressed)s,
    error = %(error)s,
    finished_at = now()
where batch_id = %(batch_id)s
