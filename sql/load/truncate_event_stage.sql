-- Empty the stage between chunks of one load (the stage is session-local and dropped on commit).
truncate event_stage
